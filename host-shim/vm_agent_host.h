// Hyperv isolation: the agent is PID 1 of a utility VM (uvm/).
#pragma once

#include <memory>

#include "agent_host.h"

namespace uvmshim::host {

struct SandboxSpec;
std::unique_ptr<AgentHost> StartVmAgentHost(const SandboxSpec& spec);

}  // namespace uvmshim::host
