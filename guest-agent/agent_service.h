// The gRPC service of proto/agent.proto (uvmshim.agent.v1.Agent).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent.grpc.pb.h"
#include "guest-agent/container.h"
#include "guest-agent/guest_storage.h"
#include "guest-agent/reaper.h"
#include "guest-agent/sandbox_shm.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

class BulkOutputPort;

struct AgentOptions {
  bool in_utility_vm = false;           // reported by Version
  std::string cgroup_parent = "uvmshim";  // containers get <parent>/<id>
  // Why PID 1 could not mount the guest rootfs (uvm.rootfs), or "": a
  // container on that rootfs is refused with this reason.
  std::string guest_rootfs_error;
  // Where MountGuestStorage mounts hot-added shares and disks.
  std::string guest_storage_root = std::string(kGuestStorageRoot);
  // Loads the drivers a hot-added share or disk needs (PID 1's module lists);
  // empty: built in, or no guest.
  GuestStorage::LoadModules load_storage_modules;
  // The bulk stdio port (utility VM with one): ReadOutput moves a pipe's
  // output there when the host asks. Null: every stream goes over gRPC.
  std::shared_ptr<BulkOutputPort> bulk_output_port;
};

// Shutdown is a callback method: it wakes WaitForShutdownRequest and its
// answer waits for AnswerShutdown, which the agent's main thread calls once
// the containers are gone (in a utility VM also the filesystems synced). So a
// host that got the answer knows the guest keeps nothing a kill could lose and
// may end the VM at once rather than wait for the guest's power-off
// (host-shim/vm_agent_host.cc). Its OnDone (the answer was sent) lets the
// agent exit right away, without a graceful gRPC shutdown that waits for the
// client to hang up.
class AgentService final : public pb::Agent::WithCallbackMethod_Shutdown<pb::Agent::Service> {
 public:
  // Starts the reaper: SIGCHLD must already be blocked (PrepareAgentProcess).
  explicit AgentService(AgentOptions options);
  ~AgentService() override;

  // Readable (eventfd) once Shutdown was called or RequestShutdown() ran.
  int shutdown_event_fd() const { return shutdown_event_.get(); }
  void RequestShutdown();
  // Answers the Shutdown calls received so far and returns once their answers
  // were sent or `wait` passed; at once when there is none (a signal).
  void AnswerShutdown(std::chrono::milliseconds wait);
  // Kills and forgets every container (at exit).
  void DestroyAllContainers();
  Reaper& reaper() { return reaper_; }
  const AgentOptions& options() const { return options_; }

  grpc::Status Version(grpc::ServerContext*, const pb::VersionRequest*, pb::VersionResponse*) override;
  grpc::Status Ping(grpc::ServerContext*, const pb::PingRequest*, pb::PingResponse*) override;
  grpc::Status CreateContainer(grpc::ServerContext*, const pb::CreateContainerRequest*,
                               pb::CreateContainerResponse*) override;
  grpc::Status StartContainer(grpc::ServerContext*, const pb::StartContainerRequest*,
                              pb::StartContainerResponse*) override;
  grpc::Status ExecProcess(grpc::ServerContext*, const pb::ExecProcessRequest*, pb::ExecProcessResponse*) override;
  grpc::Status SignalProcess(grpc::ServerContext*, const pb::SignalProcessRequest*,
                             pb::SignalProcessResponse*) override;
  grpc::Status WaitProcess(grpc::ServerContext*, const pb::WaitProcessRequest*, pb::WaitProcessResponse*) override;
  grpc::Status ReadOutput(grpc::ServerContext*, const pb::ReadOutputRequest*,
                          grpc::ServerWriter<pb::OutputChunk>*) override;
  grpc::Status WriteStdin(grpc::ServerContext*, grpc::ServerReader<pb::StdinChunk>*, pb::WriteStdinResponse*) override;
  grpc::Status CloseStdin(grpc::ServerContext*, const pb::CloseStdinRequest*, pb::CloseStdinResponse*) override;
  grpc::Status ResizePty(grpc::ServerContext*, const pb::ResizePtyRequest*, pb::ResizePtyResponse*) override;
  grpc::Status Stats(grpc::ServerContext*, const pb::StatsRequest*, pb::StatsResponse*) override;
  grpc::Status ListProcesses(grpc::ServerContext*, const pb::ListProcessesRequest*,
                             pb::ListProcessesResponse*) override;
  grpc::Status DeleteContainer(grpc::ServerContext*, const pb::DeleteContainerRequest*,
                               pb::DeleteContainerResponse*) override;
  grpc::Status UpdateContainer(grpc::ServerContext*, const pb::UpdateContainerRequest*,
                               pb::UpdateContainerResponse*) override;
  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext*, const pb::ShutdownRequest*,
                                     pb::ShutdownResponse*) override;
  grpc::Status Console(grpc::ServerContext*,
                       grpc::ServerReaderWriter<pb::ConsoleOutput, pb::ConsoleInput>*) override;
  grpc::Status SetIdentity(grpc::ServerContext*, const pb::SetIdentityRequest*, pb::SetIdentityResponse*) override;
  grpc::Status MountGuestStorage(grpc::ServerContext*, const pb::MountGuestStorageRequest*,
                                 pb::MountGuestStorageResponse*) override;
  grpc::Status UnmountGuestStorage(grpc::ServerContext*, const pb::UnmountGuestStorageRequest*,
                                   pb::UnmountGuestStorageResponse*) override;

 private:
  // ReadOutput over the bulk stdio port (the host asked, the VM has it).
  grpc::Status ReadOutputBulk(grpc::ServerContext* context, const pb::ReadOutputRequest& request, Process& process,
                              OutputKind kind, grpc::ServerWriter<pb::OutputChunk>* writer);
  bool IsRunningContainerInit(pid_t pid);
  // Throw uvmshim::Error: kInvalidArgument for a bad id, kNotFound.
  std::shared_ptr<Container> FindContainer(const std::string& id);
  std::shared_ptr<Process> FindProcess(const std::string& container_id, const std::string& exec_id);

  const AgentOptions options_;
  Reaper reaper_;
  const UniqueFd init_helper_;  // uvm-init beside the agent, or invalid (init_helper_exe.h)
  class ShutdownCall;

  UniqueFd shutdown_event_;
  UniqueFd shutdown_answered_;  // eventfd: +1 per Shutdown answer sent
  std::mutex mu_;
  std::vector<ShutdownCall*> unanswered_shutdowns_;  // under mu_; each deletes itself once answered
  std::map<std::string, std::shared_ptr<Container>> containers_;
  std::set<std::string> creating_;  // ids reserved by a CreateContainer in progress
  SandboxShm sandbox_shm_;           // the pod's /dev/shm (utility VM only)
  GuestStorage guest_storage_;       // hot-added shares and disks (utility VM only)
};

}  // namespace uvmshim::agent
