// The Windows definition of MakeUtilityVm (uvm/vm_factory.h): the HCS backend.
#include "uvm/vm_factory.h"

#include "uvm/hcs/hcs_backend.h"

namespace uvmshim::uvm {

std::unique_ptr<UtilityVm> MakeUtilityVm(VmConfig config) {
  return hcs::MakeHcsUtilityVm(std::move(config));
}

}  // namespace uvmshim::uvm
