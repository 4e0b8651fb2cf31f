// Linux host only (gRPC): the agent half of hot-added storage (issue #16).
// UtilityVm::AttachStorage hot-adds it to the VM; MountGuestStorageRequestFor
// turns the location it returns into the agent's MountGuestStorage request;
// AttachAndMountStorage does both in order.
#pragma once

#include <chrono>
#include <string>

#include "agent.pb.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

agent::v1::MountGuestStorageRequest MountGuestStorageRequestFor(const GuestStorageLocation& location,
                                                               const std::string& guest_target, bool read_only);

// Attaches `storage` to `vm`, then asks its agent (vm.AgentChannel()) to
// mount it at `guest_target` (below the agent's /run/storage). Throws
// VmError carrying the agent's status code and message; a failed mount
// leaves the storage attached (the caller detaches it, as it attached it).
GuestStorageLocation AttachAndMountStorage(UtilityVm& vm, const HostStorage& storage,
                                           const std::string& guest_target,
                                           std::chrono::milliseconds timeout = std::chrono::minutes(2));

}  // namespace uvmshim::uvm
