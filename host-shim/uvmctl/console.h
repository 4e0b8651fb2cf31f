// `uvmctl console ID`: an interactive shell in the container's UVM, outside
// the container (it sees the agent and the VM), over the agent's Console
// stream on the sandbox's debug connection. In process isolation the shell
// runs on the host, beside the agent.
#pragma once

#include <string>
#include <vector>

#include "sandbox_state.h"

namespace uvmshim::uvmctl {

int Console(const host::SandboxState& sandbox, const std::vector<std::string>& command);

}  // namespace uvmshim::uvmctl
