// containerd.task.v2.Task for one shim. A shim serves one sandbox: a pod (its
// sandbox container and every app container containerd routes here, see
// `start` in main.cc) or a lone container. The sandbox's agent runs on the
// host (process isolation) or in one utility VM (hyperv).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <google/protobuf/empty.pb.h>

#include "containerd/events/task.pb.h"
#include "containerd/task/v2/shim.pb.h"
#include "shim/event_publisher.h"
#include "shim/sandbox.h"
#include "shim/task.h"
#include "ttrpc/server.h"

namespace uvmshim::shim {

namespace taskpb = ::containerd::task::v2;
using ttrpc::Status;

class TaskService {
 public:
  struct Options {
    std::string ns;
    std::string shim_address;  // our own socket, recorded for uvmctl
    std::function<void()> request_exit;  // Shutdown with nothing left to serve
  };
  TaskService(Options options, EventPublisher& events);
  ~TaskService();  // tears every task and sandbox down

  void RegisterWith(ttrpc::Server& server);

  Status Create(const taskpb::CreateTaskRequest& request, taskpb::CreateTaskResponse& response);
  Status Start(const taskpb::StartRequest& request, taskpb::StartResponse& response);
  Status Delete(const taskpb::DeleteRequest& request, taskpb::DeleteResponse& response);
  Status Exec(const taskpb::ExecProcessRequest& request);
  Status State(const taskpb::StateRequest& request, taskpb::StateResponse& response);
  Status Kill(const taskpb::KillRequest& request);
  Status Wait(const ttrpc::RequestContext& ctx, const taskpb::WaitRequest& request,
              taskpb::WaitResponse& response);
  Status Pids(const taskpb::PidsRequest& request, taskpb::PidsResponse& response);
  Status ResizePty(const taskpb::ResizePtyRequest& request);
  Status CloseIO(const taskpb::CloseIORequest& request);
  Status Update(const taskpb::UpdateTaskRequest& request);
  Status Stats(const taskpb::StatsRequest& request, taskpb::StatsResponse& response);
  Status Connect(const taskpb::ConnectRequest& request, taskpb::ConnectResponse& response);
  Status Shutdown(const taskpb::ShutdownRequest& request);

 private:
  // Finds task/process under mutex_; null + status when missing.
  Task* FindTask(const std::string& id, Status& status);
  Process* FindProcess(Task& task, const std::string& exec_id, Status& status);
  // Both at once: the process exec_id of task task_id (*task set too).
  Process* FindProcess(const std::string& task_id, const std::string& exec_id, Task** task, Status& status);
  // The pod's sandbox an app container joins; throws when it does not run here.
  std::shared_ptr<Sandbox> RunningSandbox(const std::string& sandbox_id);
  // Is `pid` the running init of a task of `sandbox` (a namespace path may name it)?
  bool IsRunningTaskOf(const std::shared_ptr<Sandbox>& sandbox, std::uint32_t pid);
  // Builds the task; throws (the partly built task unwinds in its destructor).
  std::unique_ptr<Task> CreateTask(const taskpb::CreateTaskRequest& request, std::uint32_t& pid);
  void WatchExit(Task* task, Process* process);
  // A created process that will never run (killed, or its host died under
  // Start): marks it exited with 137 under mutex_; the caller publishes the
  // event and notifies exited_ after unlocking.
  containerd::events::TaskExit MarkNeverStartedExited(Task& task, Process& process, const std::string& why);
  void ReportNeverStartedKilled(const taskpb::KillRequest& request, const std::string& why);
  template <class Call>
  Status WithAgent(const std::string& id, Call&& call);

  const Options options_;
  EventPublisher& events_;
  std::mutex mutex_;
  std::condition_variable_any exited_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;  // null while being created
  std::map<std::string, std::shared_ptr<Sandbox>> sandboxes_;  // by sandbox id, while its task lives
};

}  // namespace uvmshim::shim
