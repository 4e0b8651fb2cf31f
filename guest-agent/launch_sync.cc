#include "guest-agent/launch_sync.h"

#include <signal.h>

#include "common/error.h"

namespace uvmshim::agent {

LaunchSync::LaunchSync(UniqueFd agent_end, std::shared_ptr<Process> process, Reaper& reaper,
                       const Reaper::SpawnToken& token)
    : socket_(std::move(agent_end)), process_(std::move(process)), reaper_(reaper), token_(token) {}

void LaunchSync::AdoptPid(pid_t pid) {
  if (pid_ != 0) return;
  pid_ = pid;
  process_->SetPid(pid);
  reaper_.Watch(pid, [process = process_](const ChildExit& exit) { process->OnExit(exit); }, token_);
}

bool LaunchSync::Receive() {
  SyncMessage message;
  UniqueFd passed;
  if (!ReceiveSyncMessage(socket_.get(), message, &passed)) return false;
  switch (message.kind) {
    case SyncKind::kPid: AdoptPid(message.value); break;
    case SyncKind::kPtyMaster: pty_master_ = std::move(passed); break;
    case SyncKind::kError:
      if (!error_) error_ = message;
      break;
    case SyncKind::kReady:
      ready_ = true;
      ready_text_ = message.text;
      break;
    case SyncKind::kStart: break;  // agent -> child only
  }
  return true;
}

void LaunchSync::KillProcess() noexcept {
  if (pid_ > 0) process_->SignalQuietly(SIGKILL, reaper_);
}

void LaunchSync::HandOver(AgentStdio stdio, bool terminal, const std::string& who) {
  if (terminal) {
    if (!pty_master_) throw Error(ErrorCode::kInternal, who + " sent no pty");
    stdio.pty_master = std::move(pty_master_);
  }
  process_->SetStdio(std::move(stdio));
}

}  // namespace uvmshim::agent
