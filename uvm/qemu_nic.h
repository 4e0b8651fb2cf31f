// QEMU arguments for the VM's network cards (VmConfig::nics): one
// virtio-net-pci device per tap fd the VMM inherits. No vhost-net (these
// hosts have no /dev/vhost-net): QEMU moves every frame itself.
#pragma once

#include <string>
#include <vector>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

// Throws VmError naming nics[i] for a bad MAC, MTU or fd.
void ValidateNics(const std::vector<VmNic>& nics, const std::string& who);
std::vector<std::string> QemuNicArguments(const std::vector<VmNic>& nics);
// The fds QEMU must inherit (kept open across its exec).
std::vector<int> NicFds(const std::vector<VmNic>& nics);

}  // namespace uvmshim::uvm
