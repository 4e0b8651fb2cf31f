// HcsApi implemented by ComputeCore.dll (Windows 10 1809 / Server 2019+).
// Windows only.
//
// ComputeCore.dll is loaded at run time (System32 only) instead of being an
// import of the executable: a host without the Hyper-V / Containers
// features then still starts the shim and gets a clear VmError when a VM is
// created, instead of a loader failure before main(). The function pointer
// types are taken from the mingw-w64 computecore.h declarations, so the
// compiler checks every signature.
//
// Result strings: HcsWaitForOperationResult (the only call here that hands
// back a PWSTR) gives the caller a string to free. Microsoft's ComputeCore
// reference for that function says LocalFree, so that is what HcsString
// uses (hcsshim calls CoTaskMemFree instead; the documentation decides).
#pragma once

#ifdef _WIN32

#include <memory>
#include <string>
#include <string_view>

#include "uvm/hcs/hcs_api.h"

namespace uvmshim::uvm::hcs {

// UTF-8 <-> UTF-16 (the C API's PCWSTR). Throw VmError on invalid input.
std::wstring Utf8ToWide(std::string_view text);
std::string WideToUtf8(std::wstring_view text);

class ComputeCoreApi final : public HcsApi {
 public:
  // Loads ComputeCore.dll; throws VmError naming the DLL and the Win32 error
  // when it or one of its functions is missing.
  ComputeCoreApi();
  ~ComputeCoreApi() override;

  HcsHandle CreateOperation() override;
  void CloseOperation(HcsHandle operation) override;
  HcsOperationResult WaitForOperationResult(HcsHandle operation,
                                            std::uint32_t timeout_ms) override;
  HResult CancelOperation(HcsHandle operation) override;
  HResult CreateComputeSystem(const std::string& id, const std::string& configuration,
                              HcsHandle operation, HcsHandle* system) override;
  HResult StartComputeSystem(HcsHandle system, HcsHandle operation,
                             const std::string& options) override;
  HResult ShutDownComputeSystem(HcsHandle system, HcsHandle operation,
                                const std::string& options) override;
  HResult TerminateComputeSystem(HcsHandle system, HcsHandle operation,
                                 const std::string& options) override;
  HResult GetComputeSystemProperties(HcsHandle system, HcsHandle operation,
                                     const std::string& property_query) override;
  HResult ModifyComputeSystem(HcsHandle system, HcsHandle operation,
                              const std::string& configuration) override;
  HResult SetComputeSystemCallback(HcsHandle system, HcsEventSink* sink) override;
  void CloseComputeSystem(HcsHandle system) override;
  HResult GrantVmAccess(const std::string& vm_id, const std::string& file_path) override;

 private:
  struct Library;
  std::unique_ptr<Library> lib_;
};

}  // namespace uvmshim::uvm::hcs

#endif  // _WIN32
