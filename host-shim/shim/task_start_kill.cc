// TaskService::Start and ::Kill: the two calls that must keep working when
// the agent stalls. Start's agent call runs outside the service lock; an
// unanswered SIGKILL ends the sandbox's host (see Sandbox::Kill).
#include <signal.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "shim/agent_status.h"
#include "containerd/events/task.pb.h"
#include "shim/task_service.h"

namespace uvmshim::shim {
using ttrpc::Code;
namespace agentpb = ::uvmshim::agent::v1;

Status TaskService::Start(const taskpb::StartRequest& request, taskpb::StartResponse& response) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = nullptr;
  Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
  if (!process) return status;
  if (process->status != ProcessStatus::kCreated || process->starting)
    return Status(Code::kFailedPrecondition,
                  fmt::format("process {} of task {}: already started", request.exec_id(), task->id));
  // The agent call runs outside the lock (a stalled agent must not block State,
  // Kill or other tasks); `starting` keeps Delete away from task and process meanwhile.
  process->starting = true;
  const std::shared_ptr<host::AgentClient> agent = task->agent;
  agentpb::ExecProcessRequest exec;
  if (!request.exec_id().empty()) {
    exec.set_container_id(task->id);
    exec.set_exec_id(process->exec_id);
    exec.set_process_json(process->process_json);
    exec.set_terminal(process->stdio.terminal);
    exec.set_stdin(!process->stdio.stdin_path.empty());
  }
  lock.unlock();
  std::uint32_t pid = 0;
  try {
    pid = request.exec_id().empty() ? agent->StartContainer(request.id()) : agent->ExecProcess(exec);
  } catch (const host::AgentError& e) {
    lock.lock();
    process->starting = false;
    // The sandbox's host died under the Start: this process can never run, and
    // no WatchExit will report it (only started processes have one). Report it
    // exited now, or containerd's Wait (and its Delete with WithProcessKill)
    // blocks for an exit that never comes.
    if (host::IsUnanswered(e) && task->sandbox->unexpected_exit()) {
      auto exit = MarkNeverStartedExited(*task, *process, e.what());
      lock.unlock();
      exited_.notify_all();
      events_.Publish("/tasks/exit", exit);
    }
    return FromAgentError(e);
  }
  lock.lock();
  process->starting = false;
  process->pid = pid;
  if (request.exec_id().empty()) {
    task->state.status = "running";
    task->SaveState();
    containerd::events::TaskStart event;
    event.set_container_id(task->id);
    event.set_pid(process->pid);
    events_.Publish("/tasks/start", event);
  } else {
    process->StartRelay(*agent, task->id);
    containerd::events::TaskExecStarted event;
    event.set_container_id(task->id);
    event.set_exec_id(process->exec_id);
    event.set_pid(process->pid);
    events_.Publish("/tasks/exec-started", event);
  }
  process->status = ProcessStatus::kRunning;
  process->waiter = std::thread([this, task, process] { WatchExit(task, process); });
  response.set_pid(process->pid);
  return Status::Ok();
}

containerd::events::TaskExit TaskService::MarkNeverStartedExited(Task& task, Process& process,
                                                                const std::string& why) {
  spdlog::error("task {} process \"{}\": never started, reported exited (137): {}", task.id, process.exec_id, why);
  process.status = ProcessStatus::kStopped;
  process.exit_status = 128 + SIGKILL;
  process.exited_at_ns = NowNanos();
  if (process.exec_id.empty()) {
    task.state.status = "stopped";
    task.SaveState();
  }
  containerd::events::TaskExit event;
  event.set_container_id(task.id);
  event.set_id(process.exec_id.empty() ? task.id : process.exec_id);
  event.set_pid(process.pid);
  event.set_exit_status(process.exit_status);
  SetTimestamp(event.mutable_exited_at(), process.exited_at_ns);
  return event;
}

Status TaskService::Kill(const taskpb::KillRequest& request) {
  std::shared_ptr<Sandbox> sandbox;
  std::shared_ptr<host::AgentClient> agent;
  bool never_started = false;
  {
    std::lock_guard lock(mutex_);
    Status status;
    Task* task = nullptr;
    Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
    if (!process) return status;
    if (process->status == ProcessStatus::kStopped)
      return Status(Code::kNotFound, fmt::format("process {} of task {}: already finished",
                                                 request.exec_id(), task->id));
    sandbox = task->sandbox;
    agent = task->agent;  // outlives a concurrent Delete
    never_started = process->status == ProcessStatus::kCreated && !process->starting;
  }
  std::string killed_how = "killed before it was started";
  try {
    agent->SignalProcess(request.id(), request.exec_id(), request.signal(), request.all());
  } catch (const host::AgentError& e) {
    // A SIGKILL must work even when the agent is stalled (VM stopped, agent
    // frozen): the sandbox's host is killed instead, which ends every process
    // in it; their exits are then reported as 137 by WatchExit.
    if (request.signal() != SIGKILL || !host::IsUnanswered(e)) return FromAgentError(e);
    sandbox->Kill(fmt::format("SIGKILL of {} unanswered: {}", request.id(), e.what()));
    killed_how = e.what();
  }
  // A created, never started process has no WatchExit: after a SIGKILL (done
  // by the agent, or by ending its host) nobody else would report its exit,
  // and containerd's Delete(WithProcessKill) waits for it (runc's shim reports
  // it from its reaper).
  if (never_started && request.signal() == SIGKILL) ReportNeverStartedKilled(request, killed_how);
  return Status::Ok();
}

void TaskService::ReportNeverStartedKilled(const taskpb::KillRequest& request, const std::string& why) {
  std::unique_lock lock(mutex_);
  Status status;
  Task* task = nullptr;
  Process* process = FindProcess(request.id(), request.exec_id(), &task, status);
  // A Start that came in meanwhile owns the process's fate (its WatchExit reports).
  if (!process || process->status != ProcessStatus::kCreated || process->starting) return;
  auto exit = MarkNeverStartedExited(*task, *process, why);
  lock.unlock();
  exited_.notify_all();
  events_.Publish("/tasks/exit", exit);
}

}  // namespace uvmshim::shim
