// SetIdentity (proto/agent.proto): a claimed warm UVM's own entropy,
// hostname and machine id. Checked and applied in the guest only.
#pragma once

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "agent.pb.h"

namespace uvmshim::agent {
namespace pb = ::uvmshim::agent::v1;

// Validates every field first (INVALID_ARGUMENT naming it), then credits the
// entropy to the kernel RNG (RNDADDENTROPY on /dev/urandom), sets the
// hostname and writes `machine_id_file`. `in_utility_vm` false: refused with
// FAILED_PRECONDITION (an agent on the host must not rename the host).
grpc::Status ApplyIdentity(const pb::SetIdentityRequest& request, bool in_utility_vm,
                           const std::filesystem::path& machine_id_file = "/etc/machine-id");

}  // namespace uvmshim::agent
