// OCI hooks that run on the host, run by uvm-runc itself the way runc runs
// them (prestart, createRuntime before the container starts; poststart after
// it; poststop after it is gone), in both isolation modes: in hyperv the agent
// is in the utility VM, where the host programs a hook names do not exist.
// Docker's libnetwork-setkey prestart hook is the case that matters: it reads
// the state's pid and fills /proc/<pid>/ns/net with the container's network.
// The hooks that run inside the container's namespaces (createContainer,
// startContainer) stay in the spec: the agent refuses them by name.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/oci_hooks.h"

namespace uvmshim::runc {

using HostHook = OciHook;  // the parser is shared with the agent (common/oci_hooks.h)

struct HostHooks : OciHookStages {
  bool BeforeStart() const { return !prestart.empty() || !create_runtime.empty(); }
};

// Takes the host hooks out of `spec` (the agent never sees them), checking
// every field: uvmshim::Error (kInvalidArgument) names it ("hooks.prestart[0].path must
// be an absolute path").
HostHooks TakeHostHooks(nlohmann::json& spec);

// The state a hook reads on stdin (runtime-spec "state").
std::string HookStateJson(const nlohmann::json& spec, const std::string& id, std::string_view status, pid_t pid,
                          const std::string& bundle);

// Runs `hooks` in order, stopping at the first failure: std::runtime_error
// "hooks.<stage>[i] (<path>): exit status 1: <its output>". Each runs in a
// fresh process with the state on stdin and its output captured (never the
// container's stdio), in `netns_fd`'s network namespace when >= 0 (the
// runtime's own, whatever namespace the calling thread is in), and is killed
// after its timeout.
void RunHostHooks(const std::vector<HostHook>& hooks, std::string_view stage, const std::string& state_json,
                  int netns_fd = -1);

}  // namespace uvmshim::runc
