// Turning a freshly created child into the user's process, and the sync
// messages between the agent and its children.
//
// The agent is multithreaded (gRPC), so a child it forks may only make
// async-signal-safe calls until it execs. Everything the child needs is
// therefore prepared in an ExecPlan before the fork; the functions marked
// "async-signal-safe" below only make system calls on that plan.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "guest-agent/oci_spec.h"
#include "guest-agent/seccomp.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

// ------------------------------------------------------------ sync messages
// Sent over an AF_UNIX SOCK_SEQPACKET socketpair (close-on-exec in the child:
// EOF after the last message means the user's command was exec'd).
enum class SyncKind : uint32_t {
  kPid = 1,    // value = pid of the process (exec path: the grandchild)
  kReady,      // container init: set up, waiting for kStart
  kStart,      // agent -> container init: exec the command now
  kError,      // error = errno, text = the step that failed
  kPtyMaster,  // an SCM_RIGHTS fd: the master of the process's pty
};

struct SyncMessage {
  SyncKind kind = SyncKind::kError;
  int32_t value = 0;
  int32_t error = 0;
  char text[500] = {};
};

// async-signal-safe. `text` may be null. Returns false when sending failed.
bool SendSyncMessage(int fd, SyncKind kind, int32_t value, int32_t error, const char* text,
                     int pass_fd = -1) noexcept;

// Blocks for one message. Returns false on EOF; throws std::system_error.
bool ReceiveSyncMessage(int fd, SyncMessage& message, UniqueFd* passed_fd = nullptr);

// "<text>: <strerror(error)>" for a kError message.
std::string DescribeSyncError(const SyncMessage& message);

// ------------------------------------------------------------ exec plan
struct ExecPlan {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<std::string> candidates;  // paths to try, in PATH order
  std::vector<char*> argv;              // null-terminated views of the above
  std::vector<char*> envp;
  std::string exec_error_prefix;        // `uvm-agent: exec "cmd": `

  bool change_user = true;  // false: keep the agent's uid/gid/groups (debug console)
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string gid_step, uid_step;

  bool set_capabilities = false;
  uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0;
  std::vector<int> ambient;
  int last_cap = 40;

  std::vector<OciRlimit> rlimits;
  std::vector<std::string> rlimit_steps;
  bool no_new_privileges = false;
  int umask = -1;
  std::string oom_score_adj;  // text to write to /proc/self/oom_score_adj, "" = leave
  int io_priority = -1;       // ioprio_set(2) value, -1 = leave
  long personality = -1;      // personality(2) (linux.personality), -1 = leave
  std::string apparmor_exec;  // "exec <profile>" for /proc/self/attr/apparmor/exec, "" = none
  std::string cwd;
  std::string cwd_step;
  // The container's filter (execs get it too, as with runc); null = none.
  // Without no_new_privileges it is loaded before the capabilities are
  // dropped (it needs CAP_SYS_ADMIN then), else last, right before execve.
  std::shared_ptr<const SeccompProgram> seccomp;
};

// Throws SpecError when the process cannot be planned.
std::unique_ptr<ExecPlan> MakeExecPlan(const OciProcess& process);

// async-signal-safe: default dispositions and an empty signal mask.
void ResetSignalsForExec() noexcept;

// async-signal-safe: oom_score_adj, io priority, personality, AppArmor
// profile on exec, rlimits, umask, seccomp (without no_new_privs),
// capability bounding set, groups/gid/uid, capabilities, cwd, no_new_privs.
// Returns 0, or an errno with
// *failed_step naming the step.
int ApplyProcessIdentity(const ExecPlan& plan, const char** failed_step) noexcept;

// async-signal-safe: loads plan.seccomp when it is loaded last (with
// no_new_privileges); call right before ExecUserCommand. 0 or an errno.
int LoadLateSeccomp(const ExecPlan& plan) noexcept;

// async-signal-safe: execs the command (PATH search like execvp). When that
// fails writes `uvm-agent: exec "cmd": <reason>` to fd 2 and exits 127
// (not found) or 126 (not executable).
[[noreturn]] void ExecUserCommand(const ExecPlan& plan) noexcept;

// The fds a child makes its stdin/stdout/stderr (all >= 3).
struct ChildStdio {
  int in = -1;
  int out = -1;
  int err = -1;
  bool controlling_terminal = false;  // `in` is a pty slave: make it the ctty
};

// async-signal-safe, for a fresh child of the agent: new session, stdio,
// every other fd close-on-exec, identity, exec. Setup failures are sent as a
// kError message on report_fd (then _exit(125)); exec failures follow
// ExecUserCommand.
[[noreturn]] void BecomeProcess(const ExecPlan& plan, const ChildStdio& stdio, int report_fd) noexcept;

// A stack for a child that shares the agent's memory.
class ChildStack {
 public:
  explicit ChildStack(size_t bytes = 64 * 1024) : bytes_(bytes), memory_(new char[bytes]) {}
  void* top() const {
    auto end = reinterpret_cast<uintptr_t>(memory_.get() + bytes_);
    return reinterpret_cast<void*>(end & ~uintptr_t{63});
  }

 private:
  size_t bytes_;
  std::unique_ptr<char[]> memory_;
};

// Runs fn(arg) in a new child created with CLONE_VM|CLONE_VFORK (plus
// `flags`: namespaces, CLONE_PARENT) on `stack`: the calling thread waits
// until the child execs or exits. Nothing of the (big, multithreaded) agent's
// address space is copied, which makes this several times faster than fork.
// The child shares the agent's memory, so fn may only make system calls
// (async-signal-safe) and must end in execve or _exit. SIGCHLD is the exit
// signal. Returns the pid, or -1 with errno.
pid_t SpawnSharingMemory(unsigned long flags, int (*fn)(void*), void* arg, const ChildStack& stack) noexcept;

// async-signal-safe: unlocks a pty master and opens its slave (TIOCGPTPEER),
// close-on-exec. -1 with errno on failure.
int OpenPtySlave(int master) noexcept;

// Moves fd to a number >= minimum (close-on-exec) so dup2 into 0..minimum-1
// cannot clobber it. Returns the new fd owner.
UniqueFd MoveFdAbove(UniqueFd fd, int minimum);

}  // namespace uvmshim::agent
