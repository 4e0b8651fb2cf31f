#include <windows.h>

#include <string>

#include "uvm/hcs/host_build.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {

HostInfo ProbeWindowsHost() {
  // RtlGetVersion reports the real build; GetVersionEx reports 9200 to a
  // process without a compatibility manifest.
  using RtlGetVersionFn = LONG(WINAPI*)(OSVERSIONINFOW*);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  auto rtl_get_version =
      ntdll == nullptr ? nullptr
                       : reinterpret_cast<RtlGetVersionFn>(
                             reinterpret_cast<void*>(GetProcAddress(ntdll, "RtlGetVersion")));
  if (rtl_get_version == nullptr) throw VmError("host probe: ntdll.dll has no RtlGetVersion");
  OSVERSIONINFOW version{};
  version.dwOSVersionInfoSize = sizeof(version);
  const LONG status = rtl_get_version(&version);
  if (status != 0) throw VmError("host probe: RtlGetVersion failed with NTSTATUS " + std::to_string(status));
  HostInfo host;
  host.build = version.dwBuildNumber;
  host.logical_processors = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
  return host;
}

}  // namespace uvmshim::uvm::hcs
