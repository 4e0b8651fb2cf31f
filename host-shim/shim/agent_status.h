// How the shim answers containerd when the agent refused a call: the agent's
// gRPC code mapped to the ttrpc code with the same meaning, one code at a
// time (containerd acts on NotFound, AlreadyExists, FailedPrecondition...).
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include "agent_client.h"
#include "ttrpc/status.h"

namespace uvmshim::shim {

ttrpc::Code TtrpcCodeFor(grpc::StatusCode code);

// The ttrpc status for a failed agent call: its code mapped, its message kept.
ttrpc::Status FromAgentError(const host::AgentError& error);

}  // namespace uvmshim::shim
