// SetIdentity (proto/agent.proto): a claimed warm UVM's own entropy,
// hostname and machine id. Checked and applied in the guest only.
#pragma once

#include <filesystem>

#include "agent.pb.h"

namespace uvmshim::agent {
namespace pb = ::uvmshim::agent::v1;

// Validates every field first (uvmshim::Error kInvalidArgument naming it),
// then credits the entropy to the kernel RNG (RNDADDENTROPY on /dev/urandom),
// reseeds its CRNG, sets the wall clock (realtime_ns), the hostname and
// writes `machine_id_file` (kInternal when one fails).
// `in_utility_vm` false: refused with kFailedPrecondition (an agent on the
// host must not rename the host).
void ApplyIdentity(const pb::SetIdentityRequest& request, bool in_utility_vm,
                           const std::filesystem::path& machine_id_file = "/etc/machine-id");

}  // namespace uvmshim::agent
