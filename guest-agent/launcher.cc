#include "guest-agent/launcher.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <spdlog/spdlog.h>

#include "guest-agent/cgroups.h"
#include "guest-agent/container_init.h"
#include "guest-agent/launch_sync.h"
#include "guest-agent/spawn.h"

extern char** environ;

namespace uvmshim::agent {
namespace {

constexpr int kPipeBytes = 1 << 20;  // fewer wakeups for big outputs
constexpr int kFirstFreeFd = 10;      // our fds live above what children dup2 into

// The agent's own system calls failing is internal, whatever the errno.
[[noreturn]] void ThrowErrno(const std::string& what, int error = errno) {
  throw Error(ErrorCode::kInternal, what + ": " + std::strerror(error));
}

UniqueFd Above(UniqueFd fd) { return MoveFdAbove(std::move(fd), kFirstFreeFd); }

struct Pipe {
  UniqueFd read, write;
};

Pipe MakePipe(bool big) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  Pipe p{Above(UniqueFd(fds[0])), Above(UniqueFd(fds[1]))};
  if (big) fcntl(p.write.get(), F_SETPIPE_SZ, kPipeBytes);  // best effort
  return p;
}

UniqueFd OpenDevNull() {
  UniqueFd fd(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd) ThrowErrno("open /dev/null");
  return Above(std::move(fd));
}

struct SyncPair {
  UniqueFd agent, child;
};

SyncPair MakeSyncPair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) ThrowErrno("socketpair");
  return {Above(UniqueFd(fds[0])), Above(UniqueFd(fds[1]))};
}

// The child ends and the agent ends of a process's stdio without a terminal.
struct PipeStdio {
  UniqueFd child_in, child_out, child_err;
  AgentStdio agent;
};

PipeStdio MakePipeStdio(bool open_stdin) {
  PipeStdio stdio;
  if (open_stdin) {
    Pipe in = MakePipe(false);
    stdio.child_in = std::move(in.read);
    stdio.agent.stdin_w = std::move(in.write);
  } else {
    stdio.child_in = OpenDevNull();
  }
  Pipe out = MakePipe(true);
  Pipe err = MakePipe(true);
  stdio.child_out = std::move(out.write);
  stdio.agent.stdout_r = std::move(out.read);
  stdio.child_err = std::move(err.write);
  stdio.agent.stderr_r = std::move(err.read);
  return stdio;
}


// The children below share the agent's memory until they exec (see
// SpawnSharingMemory): system calls only.
struct InitChild {
  const std::vector<UniqueFd>* cgroup_procs;
  int in, out, err, config, sync;
  int exe;  // the helper's executable (O_PATH), or -1: the agent itself
};

int RunInitChild(void* arg) {
  auto& child = *static_cast<InitChild*>(arg);
  if (int error = JoinProcsFiles(*child.cgroup_procs); error != 0) {
    SendSyncMessage(child.sync, SyncKind::kError, 0, error, "join the container's cgroup");
    _exit(125);
  }
  if (dup2(child.in, 0) < 0 || dup2(child.out, 1) < 0 || dup2(child.err, 2) < 0 ||
      dup2(child.config, kInitConfigFd) < 0 || dup2(child.sync, kInitSyncFd) < 0) {
    SendSyncMessage(child.sync, SyncKind::kError, 0, errno, "dup2 for the init helper");
    _exit(125);
  }
  char arg0[] = "uvm-agent";
  char arg1[] = "__init";  // kInitHelperArg
  char* argv[] = {arg0, arg1, nullptr};
  char* envp[] = {nullptr};
  if (child.exe >= 0) {
    syscall(SYS_execveat, child.exe, "", argv, envp, AT_EMPTY_PATH);
    SendSyncMessage(kInitSyncFd, SyncKind::kError, 0, errno, "exec uvm-init (the init helper)");
    _exit(125);
  }
  execve("/proc/self/exe", argv, envp);
  SendSyncMessage(kInitSyncFd, SyncKind::kError, 0, errno, "exec /proc/self/exe (the init helper)");
  _exit(125);
}

struct InitIntermediate {
  InitChild* init;
  const std::vector<UniqueFd>* namespace_fds;
  unsigned long flags;
  const ChildStack* init_stack;
};

// Joins the namespaces named by path (pid: for its children only), then
// clones the init helper with the agent as its parent and reports its pid.
int RunInitIntermediate(void* arg) {
  auto& mid = *static_cast<InitIntermediate*>(arg);
  for (const auto& fd : *mid.namespace_fds) {
    if (setns(fd.get(), 0) != 0) {
      SendSyncMessage(mid.init->sync, SyncKind::kError, 0, errno, "join linux.namespaces[].path");
      _exit(125);
    }
  }
  pid_t pid = SpawnSharingMemory(mid.flags | CLONE_PARENT, &RunInitChild, mid.init, *mid.init_stack);
  if (pid < 0) {
    SendSyncMessage(mid.init->sync, SyncKind::kError, 0, errno, "clone the container init in the joined namespaces");
    _exit(125);
  }
  SendSyncMessage(mid.init->sync, SyncKind::kPid, pid, 0, nullptr);
  _exit(0);
}

struct ExecChild {
  const std::vector<UniqueFd>* cgroup_procs;
  const std::vector<UniqueFd>* ns_fds;
  const ExecPlan* plan;
  ChildStdio stdio;
  int report;
  bool terminal;
  bool set_size;
  winsize size;
  const ChildStack* grandchild_stack;
};

int RunExecGrandchild(void* arg) {
  auto& child = *static_cast<ExecChild*>(arg);
  BecomeProcess(*child.plan, child.stdio, child.report);
}

// Joins the container (cgroup, namespaces), opens the pty inside it, then
// starts the process: the pid namespace applies to children only.
int RunExecIntermediate(void* arg) {
  auto& child = *static_cast<ExecChild*>(arg);
  if (int error = JoinProcsFiles(*child.cgroup_procs); error != 0) {
    SendSyncMessage(child.report, SyncKind::kError, 0, error, "join the container's cgroup");
    _exit(125);
  }
  for (const auto& fd : *child.ns_fds) {
    if (setns(fd.get(), 0) != 0) {
      SendSyncMessage(child.report, SyncKind::kError, 0, errno, "join the container's namespaces");
      _exit(125);
    }
  }
  if (child.terminal) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    int slave = master < 0 ? -1 : OpenPtySlave(master);
    if (slave < 0) {
      SendSyncMessage(child.report, SyncKind::kError, 0, errno, "terminal: open /dev/ptmx in the container");
      _exit(125);
    }
    if (child.set_size) ioctl(slave, TIOCSWINSZ, &child.size);
    if (!SendSyncMessage(child.report, SyncKind::kPtyMaster, 0, 0, nullptr, master)) _exit(125);
    close(master);
    child.stdio = ChildStdio{slave, slave, slave, true};
  }
  // CLONE_PARENT: the agent becomes the process's parent and reaps it.
  pid_t pid = SpawnSharingMemory(CLONE_PARENT, &RunExecGrandchild, &child, *child.grandchild_stack);
  if (pid < 0) {
    SendSyncMessage(child.report, SyncKind::kError, 0, errno, "fork into the container's pid namespace");
    _exit(125);
  }
  SendSyncMessage(child.report, SyncKind::kPid, pid, 0, nullptr);
  _exit(0);
}

ErrorCode CodeForSetupError(int error) {
  switch (error) {
    case ENOENT: return ErrorCode::kNotFound;
    case EPERM:
    case EACCES: return ErrorCode::kPermissionDenied;
    default: return ErrorCode::kFailedPrecondition;
  }
}

std::string WaitStatusText(Process& process) {
  if (process.WaitExitFor(std::chrono::seconds(2))) return "exit status " + std::to_string(process.exit()->exit_status);
  return "no exit status";
}

}  // namespace

UniqueFd LaunchContainerInit(InitLaunch launch, const std::shared_ptr<Process>& process, Reaper& reaper) {
  const OciSpec& spec = *launch.spec;
  InitConfig config;
  config.spec_json = launch.spec_json;
  config.rootfs = launch.rootfs;
  config.terminal = launch.terminal;
  const OciNamespace* net = spec.FindNamespace("network");
  config.new_network_namespace = net && net->path.empty();
  if (launch.seccomp) {
    config.seccomp_hex = SeccompProgramToHex(*launch.seccomp);
    config.seccomp_flags = launch.seccomp->flags;
  }
  config.namespaces_joined = !launch.namespace_fds.empty();

  UniqueFd config_fd(memfd_create("uvm-agent-init-config", MFD_CLOEXEC));
  if (!config_fd) ThrowErrno("memfd_create");
  std::string config_json = config.ToJson();
  if (write(config_fd.get(), config_json.data(), config_json.size()) != static_cast<ssize_t>(config_json.size()))
    ThrowErrno("write init config");
  lseek(config_fd.get(), 0, SEEK_SET);
  config_fd = Above(std::move(config_fd));
  if (launch.steps) launch.steps->Mark("init_config");

  PipeStdio stdio;
  if (launch.terminal) {
    // The helper replaces these with the pty it opens inside the container.
    stdio.child_in = OpenDevNull();
  } else {
    stdio = MakePipeStdio(launch.open_stdin);
  }
  int child_in = stdio.child_in.get();
  int child_out = launch.terminal ? child_in : stdio.child_out.get();
  int child_err = launch.terminal ? child_in : stdio.child_err.get();
  SyncPair sync = MakeSyncPair();
  for (auto& fd : launch.cgroup_procs) fd = Above(std::move(fd));

  unsigned long flags = 0;
  for (const auto& ns : spec.namespaces) {
    if (!ns.path.empty()) continue;  // joined by the helper
    if (ns.type == "pid") flags |= CLONE_NEWPID;
    else if (ns.type == "mount") flags |= CLONE_NEWNS;
    else if (ns.type == "uts") flags |= CLONE_NEWUTS;
    else if (ns.type == "ipc") flags |= CLONE_NEWIPC;
    else if (ns.type == "network") flags |= CLONE_NEWNET;
    else if (ns.type == "cgroup") flags |= CLONE_NEWCGROUP;
  }
  InitChild child{};
  child.cgroup_procs = &launch.cgroup_procs;
  child.in = child_in;
  child.out = child_out;
  child.err = child_err;
  child.config = config_fd.get();
  child.sync = sync.child.get();
  child.exe = launch.init_helper_fd;
  for (auto& fd : launch.namespace_fds) fd = Above(std::move(fd));
  ChildStack stack, init_stack;
  auto token = reaper.BeginSpawn();
  LaunchSync setup(std::move(sync.agent), process, reaper, token);
  if (launch.namespace_fds.empty()) {
    pid_t init_pid = SpawnSharingMemory(flags, &RunInitChild, &child, stack);
    if (init_pid < 0) ThrowErrno("clone the container init (namespaces flags " + std::to_string(flags) + ")");
    setup.AdoptPid(init_pid);
  } else {
    InitIntermediate mid{&child, &launch.namespace_fds, flags, &init_stack};
    // CLONE_VFORK: it has exited, and its kPid (or kError) is queued, when this returns.
    pid_t intermediate = SpawnSharingMemory(0, &RunInitIntermediate, &mid, stack);
    if (intermediate < 0) ThrowErrno("fork to join the container's namespaces");
    reaper.Watch(intermediate, [](const ChildExit&) {}, token);
  }
  const std::int64_t spawned_ns = MonotonicNs();
  if (launch.steps) launch.steps->Mark("spawn");
  launch.namespace_fds.clear();
  sync.child.reset();
  stdio.child_in.reset();
  stdio.child_out.reset();
  stdio.child_err.reset();
  config_fd.reset();
  launch.cgroup_procs.clear();

  std::optional<Error> error;  // held until the init's pid is known (intermediate path)
  try {
    for (;;) {
      if (!setup.Receive()) {
        if (error) throw *error;
        throw Error(ErrorCode::kInternal,
                    "container init exited during setup (" +
                        (setup.pid() > 0 ? WaitStatusText(*process) : std::string("no pid")) + ")");
      }
      if (setup.error() && !error)
        error.emplace(setup.error()->error ? CodeForSetupError(setup.error()->error) : ErrorCode::kFailedPrecondition,
                      DescribeSyncError(*setup.error()));
      if (error && setup.pid() > 0) throw *error;
      if (setup.ready() && setup.pid() > 0) break;  // the intermediate's kPid may follow kReady
    }
  } catch (const std::system_error& e) {
    setup.KillProcess();
    ThrowErrno("container init setup", e.code().value());
  } catch (...) {
    setup.KillProcess();
    throw;
  }
  if (launch.steps) {
    launch.steps->Mark("helper_until_ready");
    AddHelperSteps(setup.ready_text(), spawned_ns, *launch.steps);  // step_timer.h
  }
  setup.HandOver(std::move(stdio.agent), launch.terminal, "container init");
  return setup.TakeSocket();
}

void StartContainerInit(UniqueFd sync, Process& process) {
  if (!SendSyncMessage(sync.get(), SyncKind::kStart, 0, 0, nullptr))
    throw Error(ErrorCode::kFailedPrecondition,
                      "container init is gone (" + WaitStatusText(process) + ")");
  SyncMessage message;
  try {
    // EOF: the helper exec'd the command (its sync fd is close-on-exec).
    if (ReceiveSyncMessage(sync.get(), message) && message.kind == SyncKind::kError)
      throw Error(ErrorCode::kFailedPrecondition, DescribeSyncError(message));
  } catch (const std::system_error& e) {
    throw Error(ErrorCode::kInternal, std::string("start container: ") + e.what());
  }
  process.MarkStarted();
}

std::vector<UniqueFd> OpenNamespaces(pid_t pid, const std::vector<std::string>& names) {
  std::vector<UniqueFd> fds;
  for (const auto& name : names) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/" + name;
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      int error = errno;
      throw Error(error == ENOENT ? ErrorCode::kFailedPrecondition : ErrorCode::kInternal,
                        "open " + path + ": " + std::strerror(error));
    }
    fds.push_back(Above(std::move(fd)));
  }
  return fds;
}

void LaunchExec(ExecLaunch launch, std::vector<UniqueFd> ns_fds, const std::shared_ptr<Process>& process,
                Reaper& reaper) {
  std::unique_ptr<ExecPlan> plan;
  try {
    plan = MakeExecPlan(*launch.process);
  } catch (const SpecError& e) {
    throw Error(ErrorCode::kInvalidArgument, e.what());
  }
  plan->seccomp = launch.seccomp;
  plan->personality = launch.personality;
  PipeStdio stdio;
  if (!launch.terminal) stdio = MakePipeStdio(launch.open_stdin);
  SyncPair sync = MakeSyncPair();
  for (auto& fd : launch.cgroup_procs) fd = Above(std::move(fd));
  // Everything the children touch, prepared now.
  ChildStack intermediate_stack, grandchild_stack;
  ExecChild child{};
  child.cgroup_procs = &launch.cgroup_procs;
  child.ns_fds = &ns_fds;
  child.plan = plan.get();
  child.stdio = ChildStdio{stdio.child_in.get(), stdio.child_out.get(), stdio.child_err.get(), false};
  child.report = sync.child.get();
  child.terminal = launch.terminal;
  child.size.ws_col = static_cast<unsigned short>(launch.process->console_width);
  child.size.ws_row = static_cast<unsigned short>(launch.process->console_height);
  child.set_size = child.size.ws_col != 0 && child.size.ws_row != 0;
  child.grandchild_stack = &grandchild_stack;

  auto token = reaper.BeginSpawn();
  LaunchSync setup(std::move(sync.agent), process, reaper, token);
  // Returns once the intermediate exited, i.e. after the process exec'd.
  pid_t intermediate = SpawnSharingMemory(0, &RunExecIntermediate, &child, intermediate_stack);
  if (intermediate < 0) ThrowErrno("fork for exec");
  reaper.Watch(intermediate, [](const ChildExit&) {}, token);
  sync.child.reset();
  stdio.child_in.reset();
  stdio.child_out.reset();
  stdio.child_err.reset();
  launch.cgroup_procs.clear();
  ns_fds.clear();

  std::string error;
  ErrorCode code = ErrorCode::kFailedPrecondition;
  try {
    // Until EOF: the process exec'd (or failed and reported why).
    while (setup.Receive()) {
    }
  } catch (const std::system_error& e) {
    error = e.what();
    code = ErrorCode::kInternal;
  }
  if (error.empty() && setup.error()) {
    const SyncMessage& failure = *setup.error();
    error = DescribeSyncError(failure);
    if (failure.error) code = CodeForSetupError(failure.error);
    if (failure.error == ENOENT) code = ErrorCode::kInvalidArgument;  // e.g. a missing cwd
  }
  if (error.empty() && setup.pid() == 0) {
    error = "exec setup ended without a process";
    code = ErrorCode::kInternal;
  }
  if (!error.empty()) {
    setup.KillProcess();
    throw Error(code, error);
  }
  setup.HandOver(std::move(stdio.agent), launch.terminal, "exec");
  process->MarkStarted();
}

void LaunchConsole(const std::vector<std::string>& command, uint32_t width, uint32_t height,
                       const std::shared_ptr<Process>& process, Reaper& reaper) {
  OciProcess spec;
  spec.args = command;
  for (char** entry = environ; entry && *entry; ++entry) spec.env.emplace_back(*entry);
  if (!EnvLookup(spec.env, "TERM")) spec.env.emplace_back("TERM=xterm");
  if (!EnvLookup(spec.env, "PATH")) spec.env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  spec.cwd = "/";
  std::unique_ptr<ExecPlan> plan;
  try {
    plan = MakeExecPlan(spec);
  } catch (const SpecError& e) {
    throw Error(ErrorCode::kInvalidArgument, e.what());
  }
  plan->change_user = false;
  UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) ThrowErrno("posix_openpt");
  master = Above(std::move(master));
  UniqueFd slave(OpenPtySlave(master.get()));
  if (!slave) ThrowErrno("open pty slave");
  slave = Above(std::move(slave));
  if (width != 0 && height != 0) {
    winsize size{};
    size.ws_col = static_cast<unsigned short>(width);
    size.ws_row = static_cast<unsigned short>(height);
    ioctl(master.get(), TIOCSWINSZ, &size);
  }
  SyncPair sync = MakeSyncPair();
  ExecChild child{};
  child.plan = plan.get();
  child.stdio = ChildStdio{slave.get(), slave.get(), slave.get(), true};
  child.report = sync.child.get();
  ChildStack stack;
  auto token = reaper.BeginSpawn();
  LaunchSync setup(std::move(sync.agent), process, reaper, token);
  pid_t pid = SpawnSharingMemory(0, &RunExecGrandchild, &child, stack);
  if (pid < 0) ThrowErrno("fork for the console");
  setup.AdoptPid(pid);
  sync.child.reset();
  slave.reset();
  try {
    setup.Receive();  // one kError, or EOF once the shell exec'd
  } catch (const std::system_error& e) {
    ThrowErrno("console", e.code().value());
  }
  if (setup.error()) throw Error(ErrorCode::kInternal, "console: " + DescribeSyncError(*setup.error()));
  AgentStdio stdio;
  stdio.pty_master = std::move(master);  // the console's pty is the agent's own
  setup.HandOver(std::move(stdio), false, "console");
  process->MarkStarted();
}

}  // namespace uvmshim::agent
