// RAII for HCS handles and the one way every HCS call is made here:
// create an operation, issue the call, wait for its result with a timeout;
// on timeout cancel it and keep waiting until it has really completed
// (computecore.dll may still write into an operation that is closed while in
// flight - hcsshim saw access violations), then close the operation.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "uvm/hcs/hcs_api.h"

namespace uvmshim::uvm::hcs {

// Owns an HCS_OPERATION; HcsCloseOperation on destruction.
class HcsOperation {
 public:
  // Throws HcsError when HcsCreateOperation returns NULL.
  HcsOperation(HcsApi& api, std::string_view call);
  ~HcsOperation();
  HcsOperation(const HcsOperation&) = delete;
  HcsOperation& operator=(const HcsOperation&) = delete;
  HcsHandle get() const { return handle_; }

 private:
  HcsApi& api_;
  HcsHandle handle_;
};

// Owns an HCS_SYSTEM; HcsCloseComputeSystem on destruction or Reset().
class HcsSystem {
 public:
  explicit HcsSystem(HcsApi& api) : api_(api) {}
  ~HcsSystem() { Reset(); }
  HcsSystem(const HcsSystem&) = delete;
  HcsSystem& operator=(const HcsSystem&) = delete;
  HcsHandle get() const { return handle_; }
  HcsHandle* out() { return &handle_; }  // for the create call
  bool valid() const { return handle_ != nullptr; }
  void Reset();

 private:
  HcsApi& api_;
  HcsHandle handle_ = nullptr;
};

struct HcsCallTimeouts {
  // How long the result may take before the operation is cancelled.
  std::chrono::milliseconds timeout{std::chrono::minutes(4)};
  // After a cancel: length of each further wait (logged each time) until the
  // operation has completed. The wait never gives up.
  std::chrono::milliseconds drain_interval{std::chrono::seconds(30)};
};

// Runs one HCS call: `issue(operation)` must start it (e.g. call
// HcsStartComputeSystem with the operation) and return the HRESULT.
// Returns the result document. Throws HcsError naming `call` with the
// HRESULT and the text of HCS's error document; a timeout is reported as
// HCS_E_OPERATION_TIMEOUT after the operation was cancelled and completed
// (unless it still succeeded before the cancel took effect).
std::string RunHcsCall(HcsApi& api, std::string_view call, const HcsCallTimeouts& timeouts,
                       const std::function<HResult(HcsHandle operation)>& issue);

// Milliseconds as a DWORD timeout (clamped below INFINITE).
std::uint32_t ToHcsTimeout(std::chrono::milliseconds timeout);

}  // namespace uvmshim::uvm::hcs
