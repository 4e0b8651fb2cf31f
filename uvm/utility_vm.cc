#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

const char* ToString(ExitReason reason) {
  switch (reason) {
    case ExitReason::kRunning: return "running";
    case ExitReason::kShutdown: return "shutdown";
    case ExitReason::kTerminated: return "terminated";
    case ExitReason::kCrashed: return "crashed";
    case ExitReason::kBootFailed: return "boot-failed";
  }
  return "unknown";
}

GuestStorageLocation UtilityVm::AttachStorage(const HostStorage& storage) {
  throw VmError("attach " + storage.host_path.string() +
                    ": this VM backend does not hot-add shares or disks (HCS only; QEMU shares the pod via virtiofs)",
                ErrorCode::kUnimplemented);
}

}  // namespace uvmshim::uvm
