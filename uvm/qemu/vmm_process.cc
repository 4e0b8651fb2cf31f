#include "uvm/qemu/vmm_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/process/args.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/file_tail.h"

namespace uvmshim::uvm {
namespace {

namespace bp = boost::process;
namespace fs = std::filesystem;
#ifndef CLOSE_RANGE_CLOEXEC
constexpr unsigned CLOSE_RANGE_CLOEXEC = 1U << 2;
#endif

struct VmmChildSetup : bp::extend::handler {
  pid_t parent = ::getpid();
  std::vector<int> inherit;  // descriptors the child keeps (same numbers)
  template <class Executor>
  void on_exec_setup(Executor&) const {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent is already gone
    ::setpgid(0, 0);
    // QEMU's and virtiofsd's sockets (agent, debug console, QMP, virtiofs) 0600:
    // root-only even if the 0700 socket directory were opened up.
    ::umask(077);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int fd : inherit) ::fcntl(fd, F_SETFD, 0);
  }
};

std::string SignalName(int signal) {
  const char* name = ::sigabbrev_np(signal);
  return name ? fmt::format("SIG{} ({})", name, signal) : fmt::format("signal {}", signal);
}

}  // namespace

bp::child SpawnVmmProcess(const std::string& binary, const std::vector<std::string>& args, const fs::path& log,
                          std::vector<int> inherit_fds) {
  try {
    VmmChildSetup setup;
    setup.inherit = std::move(inherit_fds);
    return bp::child(binary, bp::args(args), bp::std_in < bp::null, (bp::std_out & bp::std_err) > log.string(),
                     setup);
  } catch (const std::exception& error) {
    throw VmError(fmt::format("{}: {}", binary, error.what()));
  }
}

std::vector<std::string> VirtiofsdArgs(const VirtiofsdConfig& config) {
  // Its own mount/pid/net namespaces pivoted into the shared directory
  // (symlinks cannot leave it); no extended attributes, ACLs or security
  // labels passed to the host; cache=auto without writeback, so a write from
  // the guest is on the host when the call returns.
  return {"--socket-path=" + config.socket.string(),
          "-o", "source=" + fs::absolute(config.shared_dir).string(),
          "-o", "cache=auto",
          "-o", "sandbox=namespace",
          "-o", "no_xattr",
          "-o", "no_posix_acl",
          "-o", "no_security_label"};
}

bp::child StartVirtiofsd(const VirtiofsdConfig& config) {
  bp::child child;
  try {
    child = SpawnVmmProcess(config.binary.string(), VirtiofsdArgs(config), config.log);
  } catch (const VmError& error) {
    throw VmError(fmt::format("virtiofsd: {}", error.what()));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::error_code ec;
  while (!fs::exists(config.socket, ec)) {
    if (!child.running() || std::chrono::steady_clock::now() > deadline) {
      std::error_code ignored;
      if (child.running(ignored)) child.terminate(ignored);
      throw VmError(fmt::format("virtiofsd did not create {}: {}", config.socket.string(),
                                ReadFileTail(config.log, {.max_lines = 10})));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return child;
}

ExitInfo ClassifyQemuExit(const QemuExitFacts& facts) {
  const ExitReason failed = facts.agent_ready ? ExitReason::kCrashed : ExitReason::kBootFailed;
  const int status = facts.status;
  ExitInfo info;
  if (facts.requested) {
    info = *facts.requested;
  } else if (facts.wait_errno != 0) {
    info = {ExitReason::kCrashed, fmt::format("QEMU exit status unavailable: waitid: {}", std::strerror(facts.wait_errno))};
  } else if (WIFSIGNALED(status)) {
    info = {failed, fmt::format("QEMU (pid {}) was killed by {}", facts.pid, SignalName(WTERMSIG(status)))};
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    const std::string& reason = facts.shutdown_reason;
    if (reason == "guest-reset" || reason == "guest-panic") {
      info = {failed, "the guest reset itself (" + reason + "; a kernel panic, e.g. PID 1 died)"};
    } else if (facts.agent_ready) {
      info = {ExitReason::kShutdown, "the guest powered off" + (reason.empty() ? "" : " (" + reason + ")")};
    } else {
      info = {ExitReason::kBootFailed, "the guest powered off before its agent answered"};
    }
  } else {
    info = {failed, fmt::format("QEMU exited with status {}: {}", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                facts.qemu_log_tail)};
  }
  if ((info.reason == ExitReason::kCrashed || info.reason == ExitReason::kBootFailed) && !facts.console_tail.empty())
    info.detail += "\nlast console lines:\n" + facts.console_tail;
  return info;
}

}  // namespace uvmshim::uvm
