// The agent's end of one launch's sync socket (spawn.h's SyncMessage): the
// one path container init, exec and the debug console take to learn their
// process's pid, its pty master and the first setup error, and to hand the
// process its stdio once it is set up (launcher.cc).
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

#include "common/unique_fd.h"
#include "guest-agent/process.h"
#include "guest-agent/reaper.h"
#include "guest-agent/spawn.h"

namespace uvmshim::agent {

class LaunchSync {
 public:
  // `token` was taken before the children were created and outlives this.
  LaunchSync(UniqueFd agent_end, std::shared_ptr<Process> process, Reaper& reaper,
             const Reaper::SpawnToken& token);

  // The process's pid became known (spawned directly, or reported by an
  // intermediate child): sets it and watches its exit. Later pids are ignored.
  void AdoptPid(pid_t pid);
  // Blocks for one message and records it: kPid adopts the pid, kPtyMaster
  // keeps the passed fd, the first kError is kept, kReady is noted. False at
  // EOF (the child exec'd or exited). Throws std::system_error.
  bool Receive();

  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }
  // What the child said with kReady (the init helper: its step timings).
  const std::string& ready_text() const { return ready_text_; }
  const std::optional<SyncMessage>& error() const { return error_; }
  // The socket itself (container init keeps it until StartContainer).
  UniqueFd TakeSocket() { return std::move(socket_); }

  // The launch failed: kills the process if it has a pid.
  void KillProcess() noexcept;
  // Hands the process its stdio; with `terminal` the pty master the child
  // sent joins it (uvmshim::Error kInternal "<who> sent no pty" when none came).
  void HandOver(AgentStdio stdio, bool terminal, const std::string& who);

 private:
  UniqueFd socket_;
  std::shared_ptr<Process> process_;
  Reaper& reaper_;
  const Reaper::SpawnToken& token_;
  pid_t pid_ = 0;
  bool ready_ = false;
  std::string ready_text_;
  UniqueFd pty_master_;
  std::optional<SyncMessage> error_;
};

}  // namespace uvmshim::agent
