// The pod's network inside a utility VM (hyperv pods, issue #11).
//
// The shim reads the pod's network namespace on the host (CNI's veth: MAC,
// MTU, addresses, routes) and gives the VM one virtio-net NIC per interface
// with the same MAC. Here the agent moves each NIC (found by MAC) into the
// network namespace of the pod's sandbox container, renames it to the pod's
// name (eth0), sets its MTU, addresses and routes and brings it up, before
// that container's CreateContainer answers. The pod's other containers join
// that namespace by /proc/<pid>/ns/net, as under runc.
//
// Why a namespace of the pod rather than the VM's own: the agent, the debug
// console and everything of PID 1 stay in the VM's root namespace (loopback
// only), which no container shares; a container that could configure the
// VM's network (CAP_NET_ADMIN in its own namespace) only ever touches the
// pod's. When the pod's namespace ends, the kernel returns the NIC to the root
// namespace, down and unconfigured.
#pragma once

#include <sys/types.h>

#include "agent.pb.h"

namespace uvmshim::agent {

// Checks every field; throws std::invalid_argument naming it ("network.interfaces[0].mac ...").
void ValidatePodNetwork(const uvmshim::agent::v1::PodNetwork& network);

// Moves and configures the NICs into the network namespace of process `pid`.
// Throws std::invalid_argument for bad fields, std::runtime_error naming the
// interface or route the kernel refused.
void ConfigurePodNetwork(const uvmshim::agent::v1::PodNetwork& network, pid_t pid);

}  // namespace uvmshim::agent
