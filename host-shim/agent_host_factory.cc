#include "agent_host_factory.h"

#include <fmt/format.h>

#include "paths.h"
#include "process_agent_host.h"
#include "vm_agent_host.h"

namespace uvmshim::host {

std::unique_ptr<AgentHost> StartAgentHost(const SandboxSpec& spec) {
  if (spec.config.isolation == Isolation::kProcess) {
    ProcessAgentConfig config;
    config.agent_binary = FindTool("uvm-agent", "UVMSHIM_AGENT");
    config.state_dir = spec.state_dir;
    config.socket_dir = spec.socket_dir;
    config.log_level = spec.config.agent_log_level;
    config.cgroup_parent = spec.cgroup_parent;
    return std::make_unique<ProcessAgentHost>(config);
  }
  return StartVmAgentHost(spec);
}

}  // namespace uvmshim::host
