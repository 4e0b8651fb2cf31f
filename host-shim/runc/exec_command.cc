#include "runc/exec_command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <thread>

#include "runc/container_record.h"
#include "runc/control_channel.h"
#include "runc/forked_monitor.h"
#include "runc/pty_pair.h"
#include "common/unique_fd.h"

namespace uvmshim::runc {
namespace fs = std::filesystem;

using nlohmann::json;

namespace {

json ProcessOf(const CommandLine& cl) {
  const std::string file = cl.Get("process", cl.Get("p"));
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw std::invalid_argument(fmt::format("--process: cannot read {}", file));
    json process = json::parse(in, nullptr, false);
    if (process.is_discarded() || !process.is_object())
      throw std::invalid_argument(fmt::format("--process: {} is not a JSON object", file));
    return process;
  }
  if (cl.positionals.size() < 2) throw std::invalid_argument("exec: a command or --process is required");
  json process = {{"args", json(std::vector<std::string>(cl.positionals.begin() + 1, cl.positionals.end()))},
                  {"cwd", cl.Get("cwd", "/")},
                  {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
                  {"terminal", cl.Has("tty") || cl.Has("t")}};
  if (cl.Has("env")) process["env"].push_back(cl.Get("env"));
  return process;
}

bool IsDevNull(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

// The exec monitor: reports "ok" (or the error) on `ready`, then returns the
// process's exit status.
int RunExecMonitor(const fs::path& dir, const json& process, const fs::path& console_socket, UniqueFd& ready) {
  const bool terminal = process.value("terminal", false);
  PtyPair pty;
  std::vector<int> fds{0, 1, 2};
  if (terminal && !console_socket.empty()) {
    pty = HandOverConsole(console_socket);
    fds = {pty.slave.get()};
  } else if (terminal) {
    fds = {0};
  }
  UniqueFd connection = ConnectControl(dir);
  SendMessage(connection.get(),
              {{"op", "exec"}, {"process", process.dump()}, {"terminal", terminal}, {"stdin", terminal || !IsDevNull(0)}},
              fds);
  auto answer = ReceiveMessage(connection.get());
  if (!answer) throw std::runtime_error("the container's monitor closed the connection");
  if (answer->body.contains("error")) throw std::runtime_error(answer->body["error"].get<std::string>());
  if (ready) {
    // The process's stdio lives on in the container's monitor (passed above).
    DetachStdio();
    [[maybe_unused]] auto n = ::write(ready.get(), "ok", 2);
    ready.reset();
  }
  // Our stdio lives on in the container's monitor; ours would only keep pipes open.
  std::thread([fd = connection.get(), slave = pty.slave.get()] {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&set, s);
    while (true) {
      int signal = 0;
      if (sigwait(&set, &signal) != 0) continue;
      try {
        if (signal == SIGWINCH) {
          if (slave < 0) continue;
          auto [columns, rows] = WindowSize(slave);
          if (columns && rows) SendMessage(fd, {{"op", "resize"}, {"width", columns}, {"height", rows}});
        } else {
          SendMessage(fd, {{"op", "signal"}, {"signal", signal}});
        }
      } catch (const std::exception&) {
        return;
      }
    }
  }).detach();
  while (true) {
    auto message = ReceiveMessage(connection.get());
    if (!message) return 255;  // the container's monitor went away
    if (message->body.contains("exit")) return message->body["exit"].get<int>() & 0xff;
  }
}

}  // namespace

int ExecCommand(const CommandLine& cl) {
  auto record = RequireRecord(cl.global.root, cl.Id());
  if (EffectiveStatus(record) != "running")
    throw std::runtime_error(fmt::format("cannot exec in container {}: it is {}", cl.Id(), EffectiveStatus(record)));
  const json process = ProcessOf(cl);
  const fs::path dir = ContainerDir(cl.global.root, cl.Id());
  const fs::path console_socket = cl.Get("console-socket");
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&set, s);
  if (!(cl.Has("detach") || cl.Has("d"))) {
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    UniqueFd no_ready;
    return RunExecMonitor(dir, process, console_socket, no_ready);
  }
  const ForkedMonitor monitor = ForkMonitor([&](UniqueFd ready) {
    ::setsid();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    try {
      return RunExecMonitor(dir, process, console_socket, ready);
    } catch (const std::exception& e) {
      if (ready) [[maybe_unused]] auto n = ::write(ready.get(), e.what(), std::strlen(e.what()));
      return 255;
    }
  });
  if (!monitor.ready()) {
    ::waitpid(monitor.pid, nullptr, 0);
    throw std::runtime_error(monitor.answer.empty() ? "the exec monitor ended before the process started"
                                                    : monitor.answer);
  }
  const std::string pid_file = cl.Get("pid-file");
  if (!pid_file.empty()) WritePidFile(pid_file, monitor.pid);
  return 0;
}

}  // namespace uvmshim::runc
