// One sandbox per pod (or per lone container): the agent's host (a host
// process in process isolation, a utility VM in hyperv), the agent
// connection and the sandbox's state and socket directories. Tasks hold it by
// shared_ptr; it ends with its sandbox task (Stop) or with the last holder.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "agent_client.h"
#include "agent_host.h"
#include "netns/pod_network_attachment.h"
#include "shim/pod_spec.h"
#include "sandbox_config.h"
#include "state_dir.h"

namespace uvmshim::shim {

class Sandbox {
 public:
  struct Params {
    std::string id;  // the sandbox (pause) container's id, or the lone container's
    std::string ns;
    host::SandboxConfig config;
    // hyperv: the host network namespace (CNI's) whose interfaces the VM
    // carries (netns/pod_network_attachment.h); none = loopback only.
    std::optional<PodNetnsRef> network_namespace;
    // uvm-runc keeps a sandbox below its --root: the state dir (empty =
    // host::StateDir(ns, id)) and the host cgroup parent (empty = host::SandboxCgroupParent).
    std::filesystem::path state_dir = {};
    std::string cgroup_parent = {};
  };
  // Boots the agent host and returns once the agent answers; throws
  // std::runtime_error (std::invalid_argument for bad config), leaving nothing behind.
  static std::shared_ptr<Sandbox> Start(Params params);
  ~Sandbox();  // Stop()
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Asks the agent to shut down, waits for its host (process or UVM) to end,
  // removes the state and socket directories. Idempotent.
  void Stop();

  const std::string& id() const { return params_.id; }
  const std::string& ns() const { return params_.ns; }
  const host::SandboxConfig& config() const { return params_.config; }
  host::Isolation isolation() const { return params_.config.isolation; }
  const std::filesystem::path& state_dir() const { return state_dir_.path(); }
  // Valid for the sandbox's whole life; calls fail (AgentError) once stopped.
  const std::shared_ptr<host::AgentClient>& agent() const { return agent_; }
  // What the agent configures in the pod's guest network namespace (the
  // sandbox container's CreateContainer); null without pod interfaces.
  const host::agentpb::PodNetwork* pod_network() const;
  bool stopped() const;
  // Its host is a claimed pool VM, killed when the sandbox stops (AgentHost::single_use).
  bool single_use() const;
  // The agent host's view of one container (see AgentHost::PrepareContainer);
  // throws std::runtime_error once the sandbox stopped.
  host::GuestContainer PrepareContainer(const std::string& container_id,
                                                   const std::filesystem::path& host_rootfs,
                                                   const std::string& spec_json);
  void ReleaseContainer(const std::string& container_id);  // idempotent
  // Ends the agent's host by force (SIGKILL of QEMU or the host agent) when the
  // agent stopped answering: every call and stream on it then fails, so the
  // tasks' exits are reported (137) and Delete can finish. Stop() still tidies up.
  void Kill(const std::string& why);
  // Why the host ended when nobody asked it to (VM killed, agent crashed).
  std::optional<std::string> unexpected_exit() const;
  // Called when the agent is lost: once the host is seen to have ended on its
  // own (within `wait`), the pod's link to it is taken down at once instead
  // of when the sandbox is stopped. No-op for a host that still runs.
  void ReleaseLinkIfHostEnded(std::chrono::milliseconds wait);

  // Recorded at start for state.json (uvmctl, `shim delete`).
  const std::string& debug_target() const { return debug_target_; }
  const std::string& console_log() const { return console_log_; }
  std::int64_t host_pid() const { return host_pid_; }

 private:
  explicit Sandbox(Params params);

  const Params params_;
  host::OwnedDir state_dir_;
  host::OwnedDir socket_dir_;  // empty when the sockets fit in state_dir_
  // Declared before host_: its filters go after the VM has ended.
  std::unique_ptr<host::netns::PodNetworkAttachment> network_;
  std::unique_ptr<host::AgentHost> host_;
  std::shared_ptr<host::AgentClient> agent_;
  std::string debug_target_;
  std::string console_log_;
  std::int64_t host_pid_ = 0;
  mutable std::mutex mu_;
  // ReleaseLinkIfHostEnded waits on host_ outside mu_: Stop() destroys host_
  // only once none waits (it has ended the host by then, which wakes them).
  int host_waiters_ = 0;
  std::condition_variable host_waiters_done_;
  bool stopped_ = false;
  std::optional<std::string> ended_unexpectedly_;
  std::optional<std::string> killed_because_;  // Kill()'s reason
};

}  // namespace uvmshim::shim
