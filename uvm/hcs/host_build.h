// What the Windows host offers a utility VM document: its build number
// (which decides how the kernel boots) and its logical processor count (HCS
// refuses more vCPUs than that). Probed on Windows (host_build_win.cc),
// injected everywhere else so documents for any build can be tested here.
#pragma once

namespace uvmshim::uvm::hcs {

// Windows 10 1809 / Windows Server 2019: HCS schema 2.1 and ComputeCore.dll.
inline constexpr unsigned kMinimumHostBuild = 17763;
// Chipset.LinuxKernelDirect exists from this build on (hcsshim checks the
// same number); below it the kernel boots through UEFI from a VmbFs share.
inline constexpr unsigned kKernelDirectMinimumBuild = 18286;

struct HostInfo {
  unsigned build = 0;               // 0 = not known: documents are refused
  unsigned logical_processors = 0;  // 0 = not known: no clamp
};

enum class KernelBootMode {
  kLinuxKernelDirect,  // Chipset.LinuxKernelDirect: kernel + initrd by path
  kUefiVmbFs,          // Chipset.Uefi.BootThis: the EFI-stub kernel from a VmbFs share
};

// Throws VmError naming the build and the minimum when HCS on that build
// cannot boot our utility VM (unknown or below kMinimumHostBuild).
KernelBootMode BootModeForBuild(unsigned build);

// The vCPU count HCS accepts: `requested` clamped to the host's logical
// processors (as hcsshim does), unchanged when that count is unknown.
unsigned ClampVcpus(unsigned requested, const HostInfo& host);

#ifdef _WIN32
// RtlGetVersion (not GetVersionEx, which lies without a manifest) and
// GetActiveProcessorCount(ALL_PROCESSOR_GROUPS). Throws VmError if ntdll's
// RtlGetVersion cannot be called.
HostInfo ProbeWindowsHost();
#endif

}  // namespace uvmshim::uvm::hcs
