// uvm-agent as PID 1 of a utility VM: what an init system would do before the
// agent serves (mount the API filesystems, cgroup2, load kernel modules, mount
// the container rootfs share) and the power-off at the end.
//
// Use from main(), before any thread starts:
//   if (vm::IsPid1()) {
//     auto settings = vm::ReadVmSettings();   // mounts /proc, parses cmdline
//     SetupLogging(settings.log_level);
//     vm::PrepareGuest(settings);             // logs each step with its time
//   }
//   ... serve; on Shutdown: flush the channels, then vm::PowerOff().
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "guest-agent/vm/kernel_cmdline.h"

namespace uvmshim::agent::vm {

// Where the host's rootfs directory appears in the guest (virtiofs tag from
// uvm.rootfs). The host side has the same constant: uvm::kGuestRootfsPath.
inline constexpr const char* kGuestRootfsPath = "/run/rootfs";
// Where the sandbox share appears (uvm.share); host side: uvm::kGuestSharePath.
inline constexpr const char* kGuestSharePath = "/run/share";
// Module lists written by images/build-image.sh (one .ko path per line,
// dependencies first). The Hyper-V list is loaded only under Hyper-V.
inline constexpr const char* kModuleLoadOrder = "/lib/modules/load-order";
inline constexpr const char* kHyperVModuleLoadOrder = "/lib/modules/load-order.hyperv";

bool IsPid1();

// Mounts /proc (if needed) and parses /proc/cmdline. Throws
// std::invalid_argument for malformed uvm.* parameters.
VmSettings ReadVmSettings();

// Mounts /sys, /dev, /dev/pts, /dev/shm, /run, /tmp, cgroup2 (cpu, memory and
// pids enabled for children), loads the kernel modules, brings lo up and
// mounts the sandbox share (the container rootfs: boot_rootfs.h). Throws std::system_error naming the step that
// failed; a missing optional piece (e.g. a module with no device) is logged.
void PrepareGuest(const VmSettings& settings);

struct ModuleLoadResult {
  int loaded = 0;
  std::vector<std::string> failed;  // "path: reason"
};
// Loads the modules listed in `list_file` with finit_module, in order.
// A module already loaded counts as loaded.
ModuleLoadResult LoadModules(const std::filesystem::path& list_file);

// True when CPUID reports Microsoft's hypervisor.
bool RunningOnHyperV();

// The guest's uptime (CLOCK_BOOTTIME): time since the kernel started.
std::chrono::milliseconds GuestUptime();

// sync() and power the VM off. Never returns (the kernel stops the VM; if
// that fails the process exits and the kernel panics, which ends it too).
[[noreturn]] void PowerOff();

}  // namespace uvmshim::agent::vm
