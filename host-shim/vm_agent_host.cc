#include "vm_agent_host.h"

#include <stdexcept>

#include "sandbox.h"

namespace uvmshim::host {

// Replaced by the QEMU-backed implementation once uvm/ provides it.
std::unique_ptr<AgentHost> StartVmAgentHost(const SandboxSpec& spec) {
  throw std::runtime_error("isolation hyperv: the utility VM backend is not in this build");
}

}  // namespace uvmshim::host
