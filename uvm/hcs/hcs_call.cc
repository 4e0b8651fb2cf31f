#include "uvm/hcs/hcs_call.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace uvmshim::uvm::hcs {

HcsOperation::HcsOperation(HcsApi& api, std::string_view call)
    : api_(api), handle_(api.CreateOperation()) {
  if (handle_ == nullptr) {
    throw HcsError(std::string(call), hresult::kFail, "HcsCreateOperation returned NULL");
  }
}

HcsOperation::~HcsOperation() { api_.CloseOperation(handle_); }

void HcsSystem::Reset() {
  if (handle_ == nullptr) return;
  api_.CloseComputeSystem(handle_);
  handle_ = nullptr;
}

std::uint32_t ToHcsTimeout(std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) return 0;
  return static_cast<std::uint32_t>(
      std::min<std::int64_t>(timeout.count(), kHcsInfiniteTimeout - 1));
}

std::string RunHcsCall(HcsApi& api, std::string_view call, const HcsCallTimeouts& timeouts,
                       const std::function<HResult(HcsHandle operation)>& issue) {
  HcsOperation operation(api, call);
  const HResult issued = issue(operation.get());
  if (Failed(issued)) {
    // The call failed synchronously: the operation never started.
    throw HcsError(std::string(call), issued, "");
  }

  HcsOperationResult result =
      api.WaitForOperationResult(operation.get(), ToHcsTimeout(timeouts.timeout));
  if (IsTimeout(result.hr)) {
    const HResult cancel = api.CancelOperation(operation.get());
    if (Failed(cancel)) {
      spdlog::warn("{}: HcsCancelOperation after {} ms failed: {}", call,
                   timeouts.timeout.count(), FormatHcsFailure("HcsCancelOperation", cancel));
    }
    // Never close an operation HCS may still complete: wait it out.
    for (;;) {
      HcsOperationResult drained =
          api.WaitForOperationResult(operation.get(), ToHcsTimeout(timeouts.drain_interval));
      if (!IsTimeout(drained.hr) && !Failed(drained.hr)) {
        // It finished before the cancel took effect: the call did succeed.
        spdlog::warn("{}: completed after its {} ms timeout (cancel came too late)", call,
                     timeouts.timeout.count());
        return std::move(drained.document);
      }
      if (!IsTimeout(drained.hr)) {
        std::string detail = "no result within " + std::to_string(timeouts.timeout.count()) +
                             " ms; cancelled (operation then ended with " +
                             HexHResult(drained.hr) + ")";
        std::string text = ErrorTextFromResultDocument(drained.document);
        if (!text.empty()) detail += ": " + text;
        throw HcsError(std::string(call), hresult::kOperationTimeout, detail);
      }
      spdlog::warn("{}: cancelled operation still running; waiting for it to complete", call);
    }
  }
  if (Failed(result.hr)) {
    throw HcsError(std::string(call), result.hr, ErrorTextFromResultDocument(result.document));
  }
  return std::move(result.document);
}

}  // namespace uvmshim::uvm::hcs
