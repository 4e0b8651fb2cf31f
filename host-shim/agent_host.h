// Where the agent runs for a sandbox: a host process (process isolation) or
// PID 1 of a utility VM (hyperv isolation). The rest of the host path talks
// to either through the same gRPC channel.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace uvmshim::host {

class AgentHost {
 public:
  virtual ~AgentHost() = default;  // ends whatever still runs
  virtual std::shared_ptr<grpc::Channel> channel() = 0;
  // gRPC target of a second connection for debugging tools ("" if none).
  virtual std::string debug_target() const = 0;
  // The path the agent must use for a rootfs that is at `host_rootfs` on the host.
  virtual std::string RootfsForAgent(const std::filesystem::path& host_rootfs) const = 0;
  // Waits for the agent host to end after the agent was asked to shut down;
  // forces it after the timeout.
  virtual void WaitEnded(std::chrono::milliseconds timeout) = 0;
  virtual void Kill() = 0;
  // Why it ended, when it ended without being asked (VM killed, agent crashed).
  virtual std::optional<std::string> unexpected_exit() const = 0;
  virtual std::int64_t pid() const = 0;
  virtual std::filesystem::path console_log() const = 0;
};

}  // namespace uvmshim::host
