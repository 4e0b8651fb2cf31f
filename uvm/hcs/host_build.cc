#include "uvm/hcs/host_build.h"

#include <algorithm>
#include <string>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {

KernelBootMode BootModeForBuild(unsigned build) {
  if (build == 0) {
    throw VmError("HCS document: the host's Windows build is unknown; it decides how the kernel boots "
                  "(LinuxKernelDirect needs build " + std::to_string(kKernelDirectMinimumBuild) + ")");
  }
  if (build < kMinimumHostBuild) {
    throw VmError("HCS document: Windows build " + std::to_string(build) +
                  " is not supported: the minimum is build " + std::to_string(kMinimumHostBuild) +
                  " (Windows 10 1809 / Windows Server 2019)");
  }
  return build >= kKernelDirectMinimumBuild ? KernelBootMode::kLinuxKernelDirect : KernelBootMode::kUefiVmbFs;
}

unsigned ClampVcpus(unsigned requested, const HostInfo& host) {
  if (host.logical_processors == 0) return requested;
  return std::min(requested, host.logical_processors);
}

}  // namespace uvmshim::uvm::hcs
