#include "uvm/qemu_vm.h"
#include "uvm/vm_factory.h"

namespace uvmshim::uvm {

std::unique_ptr<UtilityVm> MakeUtilityVm(VmConfig config) {
  return std::make_unique<QemuVm>(std::move(config));
}

}  // namespace uvmshim::uvm
