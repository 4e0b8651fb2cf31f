// HRESULTs returned by ComputeCore (HCS) and the error type every HCS failure
// is reported with. Platform-neutral: the codes are plain numbers here so
// the mapping is tested on Linux.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {

// Stored unsigned so it prints as the familiar 0x8037xxxx.
using HResult = std::uint32_t;

namespace hresult {
inline constexpr HResult kOk = 0;
inline constexpr HResult kFail = 0x80004005;                   // E_FAIL
inline constexpr HResult kAccessDenied = 0x80070005;           // E_ACCESSDENIED
inline constexpr HResult kFileNotFound = 0x80070002;           // ERROR_FILE_NOT_FOUND
inline constexpr HResult kInvalidArg = 0x80070057;             // E_INVALIDARG
inline constexpr HResult kWin32Timeout = 0x800705B4;           // ERROR_TIMEOUT
inline constexpr HResult kSystemNotFound = 0x8037010E;         // HCS_E_SYSTEM_NOT_FOUND
inline constexpr HResult kInvalidJson = 0x8037010D;            // HCS_E_INVALID_JSON
inline constexpr HResult kSystemAlreadyStopped = 0x80370110;   // HCS_E_SYSTEM_ALREADY_STOPPED
inline constexpr HResult kServiceNotAvailable = 0x80370114;    // HCS_E_SERVICE_NOT_AVAILABLE
inline constexpr HResult kOperationNotStarted = 0x80370115;    // HCS_E_OPERATION_NOT_STARTED
inline constexpr HResult kOperationPending = 0x80370117;       // HCS_E_OPERATION_PENDING
inline constexpr HResult kOperationTimeout = 0x80370118;       // HCS_E_OPERATION_TIMEOUT
inline constexpr HResult kOperationAlreadyCancelled = 0x80370121;  // HCS_E_OPERATION_ALREADY_CANCELLED
}  // namespace hresult

constexpr bool Failed(HResult hr) { return (hr & 0x80000000u) != 0; }

// A wait that ran out of time (HCS's own code or ERROR_TIMEOUT).
constexpr bool IsTimeout(HResult hr) {
  return hr == hresult::kOperationTimeout || hr == hresult::kWin32Timeout;
}

// Symbolic name ("HCS_E_OPERATION_TIMEOUT"), or "" for codes not in the table.
std::string_view HResultName(HResult hr);

// Short description, e.g. "timeout, HCS_E_OPERATION_TIMEOUT"; unknown codes
// are described by facility and code.
std::string DescribeHResult(HResult hr);

// "0x80370118"
std::string HexHResult(HResult hr);

// "HcsStartComputeSystem failed: 0x80370118 (timeout, HCS_E_OPERATION_TIMEOUT)"
// followed by ": <detail>" when detail is not empty.
std::string FormatHcsFailure(std::string_view call, HResult hr, std::string_view detail = {});

// The human part of an HCS result document on failure (a ResultError:
// {"Error":hr,"ErrorMessage":"...","ErrorEvents":[{"Message":"..."}]}).
// Non-JSON text is returned trimmed; "" when the document says nothing.
std::string ErrorTextFromResultDocument(std::string_view document);

// Every failed HCS call is thrown as this (a VmError, so UtilityVm callers
// need not know about it).
class HcsError : public VmError {
 public:
  HcsError(std::string call, HResult hr, std::string detail);
  const std::string& call() const { return call_; }
  HResult hresult() const { return hr_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string call_;
  HResult hr_;
  std::string detail_;
};

}  // namespace uvmshim::uvm::hcs
