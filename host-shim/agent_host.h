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

class BulkStdioChannel;

// What the agent must be told for one container.
struct GuestContainer {
  std::string rootfs;     // the rootfs path as the agent sees it
  std::string spec_json;  // the spec with bind sources as the agent sees them
};

class AgentHost {
 public:
  virtual ~AgentHost() = default;  // ends whatever still runs
  virtual std::shared_ptr<grpc::Channel> channel() = 0;
  // gRPC target of a second connection for debugging tools ("" if none).
  virtual std::string debug_target() const = 0;
  // What the agent must be told for one container: its rootfs path and its
  // spec with every host path (bind mount sources) replaced by the path the
  // agent sees. Process isolation: the host paths, checked. hyperv: paths
  // under the sandbox share (sandbox_share.h). Throws std::invalid_argument
  // naming the mount for bad input (missing source, ...), leaving nothing.
  virtual GuestContainer PrepareContainer(const std::string& container_id,
                                          const std::filesystem::path& host_rootfs,
                                          const std::string& spec_json) = 0;
  // Undoes PrepareContainer (unmounts the container's entries of the share). Idempotent.
  virtual void ReleaseContainer(const std::string& container_id) = 0;
  // Ends the agent host once the agent answered Shutdown: a host process is
  // waited for (forced after the timeout); a utility VM is ended at once, as
  // the agent answers only when the guest keeps nothing a kill could lose.
  virtual void WaitEnded(std::chrono::milliseconds timeout) = 0;
  virtual void Kill() = 0;
  // A single-use host (a claimed warm-pool VM, issue #15) keeps nothing worth
  // a graceful shutdown: it is killed at once and its pool keeper cleans up.
  virtual bool single_use() const { return false; }
  // Blocks until the host has ended, for whatever reason, or `timeout`
  // passed: true once ended. Woken by the end itself (the VM's exit, the host
  // agent's pidfd), not by polling. Ends nothing.
  virtual bool WaitForEnd(std::chrono::milliseconds timeout) = 0;
  // Why it ended, when it ended without being asked (VM killed, agent crashed).
  virtual std::optional<std::string> unexpected_exit() const = 0;
  virtual std::int64_t pid() const = 0;
  virtual std::filesystem::path console_log() const = 0;
  // The VM's bulk stdio port, connected (bulk_stdio_channel.h); null where
  // there is none (process isolation, HCS, UVMSHIM_STDIO_BULK=0).
  virtual std::shared_ptr<BulkStdioChannel> bulk_stdio() { return nullptr; }
};

}  // namespace uvmshim::host
