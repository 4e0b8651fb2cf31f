// The ComputeCore (HCS) C API as a small interface, one method per C call
// used. The real implementation (computecore_api.*, Windows only) forwards
// to ComputeCore.dll; everything above it (operations with timeouts and
// cancel, the HcsVm state machine, error mapping) is written against this
// interface so it compiles and is unit-tested on Linux with a fake. The fake
// exists only because HCS cannot run on a Linux machine.
//
// Strings are UTF-8 here; the real implementation converts to and from the
// UTF-16 the C API takes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "uvm/hcs/hresult.h"

namespace uvmshim::uvm::hcs {

// HCS_SYSTEM / HCS_OPERATION (DECLARE_HANDLE pointers); nullptr = none.
using HcsHandle = void*;

// HCS_EVENT_TYPE values this code looks at (computedefs.h).
inline constexpr std::uint32_t kHcsEventSystemExited = 0x00000001;
inline constexpr std::uint32_t kHcsEventSystemCrashInitiated = 0x00000002;
inline constexpr std::uint32_t kHcsEventSystemCrashReport = 0x00000003;
inline constexpr std::uint32_t kHcsEventServiceDisconnect = 0x02000000;

// DWORD INFINITE.
inline constexpr std::uint32_t kHcsInfiniteTimeout = 0xFFFFFFFFu;

struct HcsOperationResult {
  HResult hr = hresult::kOk;
  std::string document;  // result or ResultError document; may be empty
};

// Receives HcsSetComputeSystemCallback events. Called on an HCS thread.
class HcsEventSink {
 public:
  virtual ~HcsEventSink() = default;
  virtual void OnHcsEvent(std::uint32_t event_type, std::string_view event_data) = 0;
};

class HcsApi {
 public:
  virtual ~HcsApi() = default;

  // HcsCreateOperation(nullptr, nullptr); nullptr on failure.
  virtual HcsHandle CreateOperation() = 0;
  virtual void CloseOperation(HcsHandle operation) = 0;
  // HcsWaitForOperationResult; the result string is already freed.
  virtual HcsOperationResult WaitForOperationResult(HcsHandle operation,
                                                    std::uint32_t timeout_ms) = 0;
  virtual HResult CancelOperation(HcsHandle operation) = 0;

  virtual HResult CreateComputeSystem(const std::string& id, const std::string& configuration,
                                      HcsHandle operation, HcsHandle* system) = 0;
  virtual HResult StartComputeSystem(HcsHandle system, HcsHandle operation,
                                     const std::string& options) = 0;
  virtual HResult ShutDownComputeSystem(HcsHandle system, HcsHandle operation,
                                        const std::string& options) = 0;
  virtual HResult TerminateComputeSystem(HcsHandle system, HcsHandle operation,
                                         const std::string& options) = 0;
  virtual HResult GetComputeSystemProperties(HcsHandle system, HcsHandle operation,
                                             const std::string& property_query) = 0;
  virtual HResult ModifyComputeSystem(HcsHandle system, HcsHandle operation,
                                      const std::string& configuration) = 0;
  // HcsSetComputeSystemCallback(system, HcsEventOptionNone, sink, trampoline);
  // sink == nullptr unregisters. The sink must outlive the system handle.
  virtual HResult SetComputeSystemCallback(HcsHandle system, HcsEventSink* sink) = 0;
  // No callback runs after this returns.
  virtual void CloseComputeSystem(HcsHandle system) = 0;

  virtual HResult GrantVmAccess(const std::string& vm_id, const std::string& file_path) = 0;
};

}  // namespace uvmshim::uvm::hcs
