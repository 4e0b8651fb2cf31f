// OCI hooks (spec "hooks"), run by the agent in process isolation, where the
// agent is a host process and hook paths name host programs (Docker's
// libnetwork-setkey prestart hook, for one). In a utility VM spec_policy.cc
// refuses them: the host's programs are not there.
//
// When they run (runc runs prestart/createRuntime before pivot_root; here the
// container's namespaces and rootfs are set up and its init waits for Start,
// which is all a hook can observe of the difference):
//   prestart, createRuntime  after CreateContainer set up the container; a
//                            failure fails the create (nothing is left)
//   poststart                after StartContainer; a failure is logged
//   poststop                 after Delete; a failure is logged
// Each hook gets the container's state JSON on stdin (ociVersion, id, status,
// pid, bundle, annotations), its own args and env, stdout/stderr to the
// agent's stderr, and is killed after its timeout (default kDefaultOciHookTimeout).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/oci_hooks.h"

namespace uvmshim::agent {

class Reaper;

using OciHook = uvmshim::OciHook;  // the parser is shared with the host runtime (common/oci_hooks.h)

struct OciHooks : OciHookStages {
  std::map<std::string, std::string> annotations;  // for the state JSON
};

// Throws SpecError naming the field ("spec: hooks.prestart[0].path must be an absolute path").
OciHooks ParseOciHooks(std::string_view spec_json);

struct HookState {
  std::string id;
  std::string status;  // created, running, stopped
  pid_t pid = 0;
  std::string bundle;
  const std::map<std::string, std::string>* annotations = nullptr;
  std::string ToJson() const;
};

// Runs `hooks` in order and stops at the first failure, throwing
// std::runtime_error "hooks.<stage>[i] (<path>): <why>".
void RunHooks(const std::vector<OciHook>& hooks, std::string_view stage, const HookState& state, Reaper& reaper);

}  // namespace uvmshim::agent
