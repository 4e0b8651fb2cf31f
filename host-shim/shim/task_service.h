// containerd.task.v2.Task for one shim: each task is a container whose agent
// runs on the host (process isolation) or in its own utility VM (hyperv).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "agent_client.h"
#include "agent_host.h"
#include <google/protobuf/empty.pb.h>

#include "containerd/task/v2/shim.pb.h"
#include "sandbox_state.h"
#include "shim/event_publisher.h"
#include "shim/rootfs_mount.h"
#include "shim/stdio_files.h"
#include "stdio_relay.h"
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
  ~TaskService();  // stops every sandbox still running

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
  Status Stats(const taskpb::StatsRequest& request, taskpb::StatsResponse& response);
  Status Connect(const taskpb::ConnectRequest& request, taskpb::ConnectResponse& response);
  Status Shutdown(const taskpb::ShutdownRequest& request);

 private:
  enum class ProcessStatus { kCreated, kRunning, kStopped };
  struct Process {
    std::string exec_id;
    std::string process_json;  // exec processes: the OCI Process to start
    StdioPaths stdio;
    std::uint32_t pid = 0;
    ProcessStatus status = ProcessStatus::kCreated;
    std::uint32_t exit_status = 0;
    std::int64_t exited_at_ns = 0;
    std::unique_ptr<StdioFiles> files;
    std::unique_ptr<host::StdioRelay> relay;
    bool stdin_closed = false;  // CloseIO came before Start made the relay (exec)
    std::thread waiter;
  };
  struct Task {
    std::string id;
    std::string bundle;
    std::filesystem::path state_dir;
    std::unique_ptr<host::AgentHost> host;
    std::unique_ptr<host::AgentClient> agent;
    RootfsMount rootfs;
    host::SandboxState state;
    std::map<std::string, std::unique_ptr<Process>> processes;  // "" = init
  };

  // Finds task/process under mutex_; null + status when missing.
  Task* FindTask(const std::string& id, Status& status);
  Process* FindProcess(Task& task, const std::string& exec_id, Status& status);
  void StartRelay(Task& task, Process& process);
  void WatchExit(Task* task, Process* process);
  void TearDown(Task& task);
  void SaveState(Task& task);
  template <class Call>
  Status WithAgent(const std::string& id, Call&& call);

  const Options options_;
  EventPublisher& events_;
  std::mutex mutex_;
  std::condition_variable_any exited_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;
};

}  // namespace uvmshim::shim
