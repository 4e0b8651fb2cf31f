// Host-side client of the guest agent API (proto/agent.proto). Used the same
// way whether the agent is PID 1 of a utility VM or a host process.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "agent.grpc.pb.h"

namespace uvmshim::host {

namespace agentpb = ::uvmshim::agent::v1;

class BulkStdioChannel;

// An agent call failed. what() = "<Call> <id>: <agent's message>".
class AgentError : public std::runtime_error {
 public:
  AgentError(grpc::StatusCode code, const std::string& what)
      : std::runtime_error(what), code_(code) {}
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

struct ExitResult {
  std::uint32_t exit_status = 0;
  std::int64_t exited_at_unix_nano = 0;
  bool oom_killed = false;
};

// How long the shim waits for the agent: a stalled VM or a frozen agent must
// turn into an error, never a hang. WaitProcess and the stdio streams have no
// deadline (a process may run for months); they end when the agent's host ends.
struct AgentDeadlines {
  std::chrono::milliseconds call{std::chrono::seconds(30)};        // signal, list, stats, resize, stdin, update, delete
  std::chrono::milliseconds lifecycle{std::chrono::seconds(120)};  // create, start, exec (TCG: slow)
};

// The deadlines for a sandbox whose agent host took `startup` to come up (a
// VM's boot to a serving agent): create/start/exec get at least
// kLifecyclePerStartup times the startup. The first create in a fresh VM runs
// on the same starved vCPU as its boot (TCG: a boot of 5 s idle takes 25 s or
// more with ten VMs on two cores), so a deadline fit for an idle machine would
// fail a busy one. A stalled VM still fails in bounded time; the short calls'
// deadline is unchanged.
inline constexpr int kLifecyclePerStartup = 3;
AgentDeadlines ScaledForStartup(AgentDeadlines configured, std::chrono::milliseconds startup);

// DEADLINE_EXCEEDED or UNAVAILABLE: the agent did not answer (stalled or gone),
// as opposed to answering with an error.
bool IsUnanswered(const AgentError& error);

class AgentClient {
 public:
  explicit AgentClient(std::shared_ptr<grpc::Channel> channel, AgentDeadlines deadlines = {});
  const AgentDeadlines& deadlines() const { return deadlines_; }

  agentpb::VersionResponse Version(std::chrono::milliseconds timeout);
  // True when the agent answered within the timeout.
  bool Ping(std::chrono::milliseconds timeout);

  std::uint32_t CreateContainer(const agentpb::CreateContainerRequest& request);
  std::uint32_t StartContainer(const std::string& container_id);
  std::uint32_t ExecProcess(const agentpb::ExecProcessRequest& request);
  void SignalProcess(const std::string& container_id, const std::string& exec_id,
                     std::uint32_t signal, bool all);
  // Blocks until the process exited and its output was handed out.
  ExitResult WaitProcess(const std::string& container_id, const std::string& exec_id);
  void CloseStdin(const std::string& container_id, const std::string& exec_id);
  void ResizePty(const std::string& container_id, const std::string& exec_id,
                 std::uint32_t width, std::uint32_t height);
  agentpb::StatsResponse Stats(const std::string& container_id);
  agentpb::ListProcessesResponse ListProcesses(const std::string& container_id);
  void DeleteContainer(const std::string& container_id, bool force);
  void UpdateContainer(const std::string& container_id, const std::string& resources_json);
  void Shutdown(std::chrono::milliseconds timeout);

  agentpb::Agent::Stub& stub() { return *stub_; }
  // The VM's bulk stdio port (bulk_stdio_channel.h), or null: the stdio
  // relay then reads every stream over gRPC.
  void set_bulk_stdio(std::shared_ptr<BulkStdioChannel> channel) { bulk_stdio_ = std::move(channel); }
  BulkStdioChannel* bulk_stdio() const { return bulk_stdio_.get(); }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  void Arm(grpc::ClientContext& ctx, std::chrono::milliseconds timeout) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<agentpb::Agent::Stub> stub_;
  AgentDeadlines deadlines_;
  std::shared_ptr<BulkStdioChannel> bulk_stdio_;
};

}  // namespace uvmshim::host
