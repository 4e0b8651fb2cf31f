// CreateContainer's part of the pod network (netconfig.h): the request's
// checks before the container is created, and the configuration once its
// init (and so its new network namespace) exists.
#pragma once

#include "agent.pb.h"
#include "guest-agent/container.h"
#include "guest-agent/reaper.h"

namespace uvmshim::agent {

// Throws uvmshim::Error (kInvalidArgument) naming the field: bad network fields,
// or a spec without a new network namespace of its own to put them in.
void CheckNetworkRequest(const pb::CreateContainerRequest& request);

// Configures request.network in the namespace of the container's init; when
// that fails, destroys the container (it never runs with half a network) and
// throws uvmshim::Error.
void ConfigureNetworkOrDestroy(const pb::CreateContainerRequest& request, Container& container, Reaper& reaper);

}  // namespace uvmshim::agent
