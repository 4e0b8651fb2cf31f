// The one place a sandbox's agent host comes to life: a host process for
// process isolation, a utility VM for hyperv isolation. The containerd shim
// (and through it uvmctl) is its only user.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent_host.h"
#include "sandbox_config.h"
#include "uvm/utility_vm.h"

namespace uvmshim::host {

struct SandboxSpec {
  std::string id;
  SandboxConfig config;
  std::filesystem::path state_dir;    // private, 0700: logs, state, the share
  std::filesystem::path socket_dir;   // private, 0700: sockets (SocketDirFor(state_dir))
  std::string cgroup_parent = "uvmshim";  // process isolation: host cgroups of the sandbox
  std::vector<uvm::VmNic> nics;            // hyperv: the pod's network cards (netns/)
};

// Starts the agent host and returns once its agent answers. Throws
// std::runtime_error naming what failed (missing boot file, boot timeout with
// the console's tail, agent binary not found...).
std::unique_ptr<AgentHost> StartAgentHost(const SandboxSpec& spec);

}  // namespace uvmshim::host
