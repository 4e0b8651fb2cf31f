#include "runc/host_hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/unique_fd.h"

namespace uvmshim::runc {

using nlohmann::json;

namespace {

// Forks and execs one hook. Everything the child touches is prepared here:
// after fork() only async-signal-safe calls (the monitor has threads).
void RunOne(const HostHook& hook, const std::string& name, const std::string& state_json, int netns_fd) {
  int in[2], out[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    throw std::runtime_error(fmt::format("{}: socketpair: {}", name, std::strerror(errno)));
  UniqueFd stdin_ours(in[0]), stdin_theirs(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("{}: pipe: {}", name, std::strerror(errno)));
  UniqueFd output_ours(out[0]), output_theirs(out[1]);

  const HookExecArgs exec_args(hook);

  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("{}: fork: {}", name, std::strerror(errno)));
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the monitor blocks the signals it forwards
    ::signal(SIGPIPE, SIG_DFL);
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(126);
    if (::dup2(stdin_theirs.get(), 0) < 0 || ::dup2(output_theirs.get(), 1) < 0 || ::dup2(output_theirs.get(), 2) < 0)
      ::_exit(126);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);  // nothing of the monitor's leaks into the hook
    ::execve(hook.path.c_str(), exec_args.argv(), exec_args.envp());
    ::_exit(127);
  }
  stdin_theirs.reset();
  output_theirs.reset();
  // The state is small (far below a socket buffer): one send, then EOF.
  [[maybe_unused]] auto sent = ::send(stdin_ours.get(), state_json.data(), state_json.size(), MSG_NOSIGNAL);
  stdin_ours.reset();

  UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  const auto timeout = hook.timeout();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string output;
  bool timed_out = false;
  // Output until the hook exits (a daemon it leaves behind may keep the pipe open).
  while (exited) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{exited.get(), POLLIN, 0}, {output_ours ? output_ours.get() : -1, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) {
      char buffer[4096];
      const ssize_t n = ::read(output_ours.get(), buffer, sizeof buffer);
      if (n > 0 && output.size() < 64 * 1024) output.append(buffer, static_cast<std::size_t>(n));
      if (n == 0) output_ours.reset();
    }
    if (fds[0].revents) break;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output_ours) {  // what it wrote just before it exited
    ::fcntl(output_ours.get(), F_SETFL, O_NONBLOCK);
    char buffer[4096];
    for (ssize_t n; output.size() < 64 * 1024 && (n = ::read(output_ours.get(), buffer, sizeof buffer)) > 0;)
      output.append(buffer, static_cast<std::size_t>(n));
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  const std::string said = output.empty() ? "" : ": " + output;
  if (timed_out) throw std::runtime_error(fmt::format("{}: timed out after {} s{}", name, timeout.count(), said));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && output.empty())
    throw std::runtime_error(fmt::format("{}: cannot be executed", name));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(fmt::format("{}: {}{}", name, DescribeWaitStatus(status), said));
}

}  // namespace

HostHooks TakeHostHooks(json& spec) {
  HostHooks hooks;
  if (!spec.contains("hooks") || spec["hooks"].is_null()) return hooks;
  json& stages = spec["hooks"];
  static_cast<OciHookStages&>(hooks) = ParseOciHookStages(stages);
  // The agent never sees these; createContainer/startContainer stay for it to refuse.
  for (const char* key : kOciHookStageKeys) stages.erase(key);
  if (stages.empty()) spec.erase("hooks");
  return hooks;
}

std::string HookStateJson(const json& spec, const std::string& id, std::string_view status, pid_t pid,
                          const std::string& bundle) {
  json state = {{"ociVersion", spec.value("ociVersion", std::string("1.0.2"))},
                {"id", id},
                {"status", status},
                {"pid", pid},
                {"bundle", bundle}};
  if (spec.contains("annotations") && spec["annotations"].is_object()) state["annotations"] = spec["annotations"];
  return state.dump();
}

void RunHostHooks(const std::vector<HostHook>& hooks, std::string_view stage, const std::string& state_json,
                  int netns_fd) {
  for (std::size_t i = 0; i < hooks.size(); ++i)
    RunOne(hooks[i], fmt::format("hooks.{}[{}] ({})", stage, i, hooks[i].path), state_json, netns_fd);
}

}  // namespace uvmshim::runc
