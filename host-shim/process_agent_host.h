// Process isolation: uvm-agent runs on the host, listening on a private Unix
// socket (0600 in a 0700 directory), so the same API serves both modes.
#pragma once

#include <boost/process/child.hpp>

#include "common/unique_fd.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "agent_host.h"

namespace uvmshim::host {

struct ProcessAgentConfig {
  std::filesystem::path agent_binary;
  std::filesystem::path state_dir;  // created 0700; holds agent.log
  std::filesystem::path socket_dir;  // created 0700; holds agent.sock (empty = state_dir)
  std::chrono::milliseconds ready_timeout{10000};
  std::string log_level = "info";
  // The agent's cgroup parent: one per sandbox, so `shim delete` can find and
  // end every process of a sandbox whose shim and agent were killed.
  std::string cgroup_parent = "uvmshim";
};

class ProcessAgentHost final : public AgentHost {
 public:
  // Starts the agent and returns once it answers; throws std::runtime_error.
  explicit ProcessAgentHost(ProcessAgentConfig config);
  ~ProcessAgentHost() override;

  std::shared_ptr<grpc::Channel> channel() override { return channel_; }
  std::string debug_target() const override { return target_; }
  GuestContainer PrepareContainer(const std::string& container_id, const std::filesystem::path& host_rootfs,
                                  const std::string& spec_json) override;
  void ReleaseContainer(const std::string&) override {}  // nothing was set up
  void WaitEnded(std::chrono::milliseconds timeout) override;
  void Kill() override;
  bool WaitForEnd(std::chrono::milliseconds timeout) override;
  std::optional<std::string> unexpected_exit() const override;
  std::int64_t pid() const override;
  std::filesystem::path console_log() const override { return config_.state_dir / "agent.log"; }

 private:
  ProcessAgentConfig config_;
  std::filesystem::path socket_;
  std::string target_;
  boost::process::child child_;
  UniqueFd exited_;  // pidfd of child_: readable once it ended (reaped or not)
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<bool> asked_to_end_{false};
};

}  // namespace uvmshim::host
