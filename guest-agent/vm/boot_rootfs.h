// PID 1's mount of the container rootfs named by uvm.rootfs. A failure does
// not end the VM: the reason goes to the console log (which the host keeps)
// and to the agent, which refuses containers on that rootfs with it, so the
// host learns why instead of seeing a VM that powered off silently.
#pragma once

#include <string>

#include "guest-agent/vm/kernel_cmdline.h"
#include "guest-agent/vm/rootfs_source.h"

namespace uvmshim::agent::vm {

// Module lists build-image.sh writes for a rootfs transport; loaded only when
// uvm.rootfs needs them (no boot time spent on them otherwise).
inline constexpr const char* kScsiModuleLoadOrder = "/lib/modules/load-order.scsi";
inline constexpr const char* kPlan9ModuleLoadOrder = "/lib/modules/load-order.9p";

// Mounts settings.rootfs_tag at kGuestRootfsPath. Returns "" on success (or
// when there is no uvm.rootfs), else the reason, already logged.
std::string MountBootRootfs(const VmSettings& settings);

// Loads the module list `kind` needs (SCSI or Plan9; nothing for virtiofs),
// logging failures: for the boot rootfs and for storage hot-added later
// (MountGuestStorage). Loading a module twice is harmless.
void LoadRootfsTransportModules(RootfsSource::Kind kind);

}  // namespace uvmshim::agent::vm
