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

}  // namespace uvmshim::uvm
