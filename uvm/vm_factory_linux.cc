#include "uvm/qemu_vm.h"
#include "uvm/vm_factory.h"

namespace uvmshim::uvm {

std::unique_ptr<UtilityVm> MakeUtilityVm(VmConfig config) {
  QemuOptions options;
  options.bulk_stdio_port = config.bulk_stdio_port;
  return std::make_unique<QemuVm>(std::move(config), std::move(options));
}

}  // namespace uvmshim::uvm
