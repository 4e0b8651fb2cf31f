#include "guest-agent/spawn.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/personality.h>
#include <sched.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/fd_passing.h"
#include "guest-agent/exit_status.h"
#include "guest-agent/proc_text.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

namespace uvmshim::agent {

bool SendSyncMessage(int fd, SyncKind kind, int32_t value, int32_t error, const char* text,
                     int pass_fd) noexcept {
  SyncMessage message;
  message.kind = kind;
  message.value = value;
  message.error = error;
  if (text) {
    size_t i = 0;
    for (; text[i] != '\0' && i + 1 < sizeof message.text; ++i) message.text[i] = text[i];
    message.text[i] = '\0';
  }
  const ssize_t sent = SendWithFds(fd, &message, sizeof message, &pass_fd, pass_fd >= 0 ? 1 : 0);
  return sent == static_cast<ssize_t>(sizeof message);
}

bool ReceiveSyncMessage(int fd, SyncMessage& message, UniqueFd* passed_fd) {
  Received received = ReceiveWithFds(fd, &message, sizeof message);
  if (received.bytes < 0) throw std::system_error(errno, std::generic_category(), "sync: recvmsg");
  if (passed_fd && !received.fds.empty()) *passed_fd = std::move(received.fds.back());  // the others close
  const ssize_t n = received.bytes;
  if (n == 0) return false;
  if (n != static_cast<ssize_t>(sizeof message))
    throw std::system_error(EPROTO, std::generic_category(), "sync: short message");
  message.text[sizeof message.text - 1] = '\0';
  return true;
}

std::string DescribeSyncError(const SyncMessage& message) {
  std::string text = message.text;
  if (message.error != 0) text += std::string(": ") + std::strerror(message.error);
  return text;
}

namespace {

uint64_t CapMask(const std::optional<std::vector<int>>& caps, int last_cap) {
  uint64_t mask = 0;
  if (!caps) return 0;
  for (int cap : *caps)
    if (cap >= 0 && cap <= last_cap) mask |= uint64_t{1} << cap;
  return mask;
}

int ReadLastCap() {
  const auto text = ReadProcText("/proc/sys/kernel/cap_last_cap", 64);
  const auto value = text ? ParseLeadingInt(*text) : std::nullopt;
  if (!value || *value < 0 || *value > 63) return 40;
  return static_cast<int>(*value);
}

const char* RlimitName(int resource) {
  switch (resource) {
    case RLIMIT_NOFILE: return "RLIMIT_NOFILE";
    case RLIMIT_NPROC: return "RLIMIT_NPROC";
    case RLIMIT_CORE: return "RLIMIT_CORE";
    case RLIMIT_MEMLOCK: return "RLIMIT_MEMLOCK";
    default: return "rlimit";
  }
}

size_t Append(char* buffer, size_t used, size_t size, const char* text) noexcept {
  while (*text && used + 1 < size) buffer[used++] = *text++;
  buffer[used] = '\0';
  return used;
}

}  // namespace

std::unique_ptr<ExecPlan> MakeExecPlan(const OciProcess& process) {
  auto plan = std::make_unique<ExecPlan>();
  plan->args = process.args;
  plan->env = process.env;
  const std::string& command = process.args.front();
  if (command.empty()) throw SpecError("process: args[0] is empty");
  if (command.find('/') != std::string::npos) {
    plan->candidates.push_back(command);
  } else {
    std::string path = EnvLookup(process.env, "PATH").value_or(
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    size_t start = 0;
    for (;;) {
      size_t end = path.find(':', start);
      std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (dir.empty()) dir = ".";
      plan->candidates.push_back(dir + "/" + command);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (auto& arg : plan->args) plan->argv.push_back(arg.data());
  plan->argv.push_back(nullptr);
  for (auto& entry : plan->env) plan->envp.push_back(entry.data());
  plan->envp.push_back(nullptr);
  plan->exec_error_prefix = "uvm-agent: exec \"" + command + "\": ";

  plan->uid = process.user.uid;
  plan->gid = process.user.gid;
  plan->groups.assign(process.user.additional_gids.begin(), process.user.additional_gids.end());
  plan->gid_step = "setresgid " + std::to_string(plan->gid);
  plan->uid_step = "setresuid " + std::to_string(plan->uid);

  plan->last_cap = ReadLastCap();
  if (process.capabilities) {
    const auto& caps = *process.capabilities;
    plan->set_capabilities = true;
    plan->bounding = caps.bounding ? CapMask(caps.bounding, plan->last_cap) : ~uint64_t{0};
    plan->effective = CapMask(caps.effective, plan->last_cap);
    plan->permitted = CapMask(caps.permitted, plan->last_cap);
    plan->inheritable = CapMask(caps.inheritable, plan->last_cap);
    if (caps.ambient)
      for (int cap : *caps.ambient)
        if (cap <= plan->last_cap) plan->ambient.push_back(cap);
  }
  plan->rlimits = process.rlimits;
  for (const auto& limit : process.rlimits) plan->rlimit_steps.push_back(std::string("setrlimit ") + RlimitName(limit.resource));
  plan->no_new_privileges = process.no_new_privileges;
  if (process.user.umask) plan->umask = static_cast<int>(*process.user.umask & 0777);
  if (process.oom_score_adj) plan->oom_score_adj = std::to_string(*process.oom_score_adj);
  if (process.io_priority) plan->io_priority = *process.io_priority;
  if (!process.apparmor_profile.empty()) plan->apparmor_exec = "exec " + process.apparmor_profile;
  plan->cwd = process.cwd;
  plan->cwd_step = "cwd " + process.cwd;
  return plan;
}

void ResetSignalsForExec() noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &action, nullptr);  // EINVAL for glibc's internal signals: fine
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

int ApplyProcessIdentity(const ExecPlan& plan, const char** failed_step) noexcept {
  auto fail = [&](const char* step) {
    int error = errno;
    *failed_step = step;
    return error == 0 ? EINVAL : error;
  };
  if (!plan.oom_score_adj.empty()) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, plan.oom_score_adj.data(), plan.oom_score_adj.size()) < 0) {
      int error = errno;
      if (fd >= 0) close(fd);
      errno = error;
      return fail("oom_score_adj");
    }
    close(fd);
  }
  if (plan.io_priority >= 0 && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, plan.io_priority) != 0)
    return fail("ioprio_set (process.ioPriority)");
  if (plan.personality >= 0 && personality(static_cast<unsigned long>(plan.personality)) == -1)
    return fail("personality (linux.personality)");
  if (!plan.apparmor_exec.empty()) {
    // Takes effect at the execve of the user's command, as runc does it.
    int fd = open("/proc/self/attr/apparmor/exec", O_WRONLY | O_CLOEXEC);
    if (fd < 0) fd = open("/proc/self/attr/exec", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, plan.apparmor_exec.data(), plan.apparmor_exec.size()) < 0) {
      int error = errno;
      if (fd >= 0) close(fd);
      errno = error;
      return fail("set AppArmor profile (process.apparmorProfile)");
    }
    close(fd);
  }
  for (size_t i = 0; i < plan.rlimits.size(); ++i) {
    rlimit limit{plan.rlimits[i].soft, plan.rlimits[i].hard};
    if (setrlimit(static_cast<__rlimit_resource_t>(plan.rlimits[i].resource), &limit) != 0)
      return fail(plan.rlimit_steps[i].c_str());
  }
  if (plan.umask >= 0) umask(static_cast<mode_t>(plan.umask));
  if (plan.seccomp && !plan.no_new_privileges) {
    if (int error = LoadSeccompProgram(*plan.seccomp); error != 0) {
      errno = error;
      return fail("load the seccomp filter");
    }
  }
  if (plan.set_capabilities) {
    for (int cap = 0; cap <= plan.last_cap; ++cap) {
      if (plan.bounding & (uint64_t{1} << cap)) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return fail("drop capability from bounding set");
    }
  }
  if (plan.change_user) {
    // Raw system calls: glibc's set*id wrappers signal every thread glibc
    // knows of, and after a fork of a threaded process those threads do not
    // exist.
    if (syscall(SYS_setgroups, plan.groups.size(), plan.groups.data()) != 0) return fail("setgroups");
    if (syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) return fail(plan.gid_step.c_str());
    if (plan.set_capabilities && plan.uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail("prctl keepcaps");
    if (syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) return fail(plan.uid_step.c_str());
  }
  if (plan.set_capabilities) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    data[0].effective = static_cast<uint32_t>(plan.effective);
    data[1].effective = static_cast<uint32_t>(plan.effective >> 32);
    data[0].permitted = static_cast<uint32_t>(plan.permitted);
    data[1].permitted = static_cast<uint32_t>(plan.permitted >> 32);
    data[0].inheritable = static_cast<uint32_t>(plan.inheritable);
    data[1].inheritable = static_cast<uint32_t>(plan.inheritable >> 32);
    if (syscall(SYS_capset, &header, data) != 0) return fail("capset");
    for (int cap : plan.ambient)
      if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) return fail("raise ambient capability");
  }
  if (chdir(plan.cwd.c_str()) != 0) return fail(plan.cwd_step.c_str());
  if (plan.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("prctl no_new_privs");
  return 0;
}

int LoadLateSeccomp(const ExecPlan& plan) noexcept {
  if (!plan.seccomp || !plan.no_new_privileges) return 0;
  return LoadSeccompProgram(*plan.seccomp);
}

void ExecUserCommand(const ExecPlan& plan) noexcept {
  int error = ENOENT;
  bool saw_eacces = false;
  for (const auto& candidate : plan.candidates) {
    execve(candidate.c_str(), plan.argv.data(), plan.envp.data());
    error = errno;
    if (error == EACCES) {
      saw_eacces = true;
      continue;
    }
    if (error == ENOENT || error == ENOTDIR || error == ESTALE || error == ENODEV || error == ETIMEDOUT) continue;
    break;  // found but not executable (ENOEXEC, E2BIG, ...)
  }
  if (saw_eacces && (error == ENOENT || error == ENOTDIR)) error = EACCES;
  char message[1024];
  size_t used = Append(message, 0, sizeof message, plan.exec_error_prefix.c_str());
  const char* reason = strerrordesc_np(error);
  used = Append(message, used, sizeof message, reason ? reason : "exec failed");
  used = Append(message, used, sizeof message, "\n");
  [[maybe_unused]] auto n = write(2, message, used);
  _exit(static_cast<int>(ExitStatusForExecErrno(error)));
}

pid_t SpawnSharingMemory(unsigned long flags, int (*fn)(void*), void* arg, const ChildStack& stack) noexcept {
  return clone(fn, stack.top(), static_cast<int>(flags | CLONE_VM | CLONE_VFORK | SIGCHLD), arg);
}

int OpenPtySlave(int master) noexcept {
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) return -1;
  return ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

UniqueFd MoveFdAbove(UniqueFd fd, int minimum) {
  if (!fd || fd.get() >= minimum) return fd;
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, minimum);
  if (moved < 0) throw std::system_error(errno, std::generic_category(), "fcntl F_DUPFD_CLOEXEC");
  return UniqueFd(moved);
}

void BecomeProcess(const ExecPlan& plan, const ChildStdio& stdio, int report_fd) noexcept {
  ResetSignalsForExec();
  const char* step = "setsid";
  int error = 0;
  if (setsid() < 0) {
    error = errno;
  } else if (dup2(stdio.in, 0) < 0 || dup2(stdio.out, 1) < 0 || dup2(stdio.err, 2) < 0) {
    error = errno;
    step = "dup2 stdio";
  } else if (stdio.controlling_terminal && ioctl(0, TIOCSCTTY, 0) != 0) {
    error = errno;
    step = "set controlling terminal";
  } else {
    // Nothing of the agent's may leak into the container (the fds are
    // close-on-exec already; this catches any that are not).
    syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    error = ApplyProcessIdentity(plan, &step);
    if (error == 0 && (error = LoadLateSeccomp(plan)) != 0) step = "load the seccomp filter";
  }
  if (error != 0) {
    SendSyncMessage(report_fd, SyncKind::kError, 0, error, step);
    _exit(125);
  }
  ExecUserCommand(plan);
}

}  // namespace uvmshim::agent
