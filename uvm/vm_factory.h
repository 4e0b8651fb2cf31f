// The host's utility VM backend: QemuVm on Linux (uvm/qemu_vm.h), the HCS
// backend on Windows. Each platform build links exactly one definition.
#pragma once

#include <memory>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

std::unique_ptr<UtilityVm> MakeUtilityVm(VmConfig config);

}  // namespace uvmshim::uvm
