// Waits for the VMM while watching the processes it depends on.
#pragma once

#include <sys/types.h>

#include <functional>

namespace uvmshim::uvm {

// Returns once `vmm` exited. If `helper` (virtiofsd: the guest's root and
// volumes) exits first, calls on_helper_exit() (which should end the VMM: a
// guest whose share is gone hangs every file access, its processes cannot
// even die) and keeps waiting for `vmm`. A VMM that exits within 2 s of the
// helper (a normal power-off) is not reported. helper <= 0: `vmm` only.
// Does not reap either process. Returns at once if pidfds are unavailable.
void WaitVmmWatchingHelper(pid_t vmm, pid_t helper, const std::function<void()>& on_helper_exit);

}  // namespace uvmshim::uvm
