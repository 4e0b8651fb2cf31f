#include "uvm/hcs/hresult.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace uvmshim::uvm::hcs {
namespace {

struct KnownCode {
  HResult hr;
  std::string_view name;
  std::string_view text;
};

// HCS codes (facility 0x37) as winerror.h defines them, plus the generic
// Win32/COM codes HCS calls commonly return.
constexpr KnownCode kKnownCodes[] = {
    {0x80370100, "HCS_E_TERMINATED_DURING_START", "system terminated during start"},
    {0x80370101, "HCS_E_IMAGE_MISMATCH", "image does not match the host"},
    {0x80370102, "HCS_E_HYPERV_NOT_INSTALLED", "Hyper-V is not installed"},
    {0x80370105, "HCS_E_INVALID_STATE", "invalid state for this operation"},
    {0x80370106, "HCS_E_UNEXPECTED_EXIT", "system exited unexpectedly"},
    {0x80370107, "HCS_E_TERMINATED", "system was terminated"},
    {0x80370108, "HCS_E_CONNECT_FAILED", "could not connect to the guest"},
    {0x80370109, "HCS_E_CONNECTION_TIMEOUT", "guest connection timed out"},
    {0x8037010A, "HCS_E_CONNECTION_CLOSED", "guest connection closed"},
    {0x8037010B, "HCS_E_UNKNOWN_MESSAGE", "unknown message"},
    {0x8037010C, "HCS_E_UNSUPPORTED_PROTOCOL_VERSION", "unsupported protocol version"},
    {0x8037010D, "HCS_E_INVALID_JSON", "invalid JSON document"},
    {0x8037010E, "HCS_E_SYSTEM_NOT_FOUND", "no such compute system"},
    {0x8037010F, "HCS_E_SYSTEM_ALREADY_EXISTS", "compute system already exists"},
    {0x80370110, "HCS_E_SYSTEM_ALREADY_STOPPED", "compute system already stopped"},
    {0x80370111, "HCS_E_PROTOCOL_ERROR", "protocol error"},
    {0x80370112, "HCS_E_INVALID_LAYER", "invalid layer"},
    {0x80370113, "HCS_E_WINDOWS_INSIDER_REQUIRED", "needs a Windows Insider build"},
    {0x80370114, "HCS_E_SERVICE_NOT_AVAILABLE", "compute service not available"},
    {0x80370115, "HCS_E_OPERATION_NOT_STARTED", "operation not started"},
    {0x80370116, "HCS_E_OPERATION_ALREADY_STARTED", "operation already started"},
    {0x80370117, "HCS_E_OPERATION_PENDING", "operation pending"},
    {0x80370118, "HCS_E_OPERATION_TIMEOUT", "timeout"},
    {0x80370119, "HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET", "callback already set"},
    {0x8037011A, "HCS_E_OPERATION_RESULT_ALLOCATION_FAILED", "result allocation failed"},
    {0x8037011B, "HCS_E_ACCESS_DENIED", "access denied"},
    {0x8037011C, "HCS_E_GUEST_CRITICAL_ERROR", "guest critical error"},
    {0x8037011D, "HCS_E_PROCESS_INFO_NOT_AVAILABLE", "process information not available"},
    {0x8037011E, "HCS_E_SERVICE_DISCONNECT", "compute service disconnected"},
    {0x8037011F, "HCS_E_PROCESS_ALREADY_STOPPED", "process already stopped"},
    {0x80370120, "HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION", "system not configured for this operation"},
    {0x80370121, "HCS_E_OPERATION_ALREADY_CANCELLED", "operation already cancelled"},
    {0x80004001, "E_NOTIMPL", "not implemented"},
    {0x80004005, "E_FAIL", "unspecified failure"},
    {0x80070002, "ERROR_FILE_NOT_FOUND", "file not found"},
    {0x80070003, "ERROR_PATH_NOT_FOUND", "path not found"},
    {0x80070005, "E_ACCESSDENIED", "access denied"},
    {0x80070006, "E_HANDLE", "invalid handle"},
    {0x8007000D, "ERROR_INVALID_DATA", "invalid data"},
    {0x8007000E, "E_OUTOFMEMORY", "out of memory"},
    {0x80070032, "ERROR_NOT_SUPPORTED", "not supported"},
    {0x80070057, "E_INVALIDARG", "invalid argument"},
    {0x80070490, "ERROR_NOT_FOUND", "element not found"},
    {0x800704C7, "ERROR_CANCELLED", "cancelled"},
    {0x800705B4, "ERROR_TIMEOUT", "timeout"},
    {0x8007139F, "ERROR_INVALID_STATE", "invalid state"},
};

const KnownCode* Find(HResult hr) {
  for (const auto& code : kKnownCodes) {
    if (code.hr == hr) return &code;
  }
  return nullptr;
}

std::string Trim(std::string_view text, std::size_t max_len) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n' || text.front() == '\r' ||
                           text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  if (text.size() > max_len) return std::string(text.substr(0, max_len)) + "...";
  return std::string(text);
}

}  // namespace

std::string_view HResultName(HResult hr) {
  const KnownCode* code = Find(hr);
  return code ? code->name : std::string_view{};
}

std::string HexHResult(HResult hr) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(hr));
  return buf;
}

std::string DescribeHResult(HResult hr) {
  if (const KnownCode* code = Find(hr)) {
    return std::string(code->text) + ", " + std::string(code->name);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "unknown HRESULT: facility 0x%X, code 0x%X",
                static_cast<unsigned>((hr >> 16) & 0x1FFF), static_cast<unsigned>(hr & 0xFFFF));
  return buf;
}

std::string FormatHcsFailure(std::string_view call, HResult hr, std::string_view detail) {
  std::string out(call);
  out += " failed: ";
  out += HexHResult(hr);
  out += " (";
  out += DescribeHResult(hr);
  out += ")";
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

std::string ErrorTextFromResultDocument(std::string_view document) {
  constexpr std::size_t kMaxLen = 2000;
  auto parsed = nlohmann::json::parse(document, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Trim(document, kMaxLen);
  if (!parsed.is_object()) return Trim(document, kMaxLen);
  std::string text;
  auto append = [&text](const std::string& part) {
    if (part.empty() || text.find(part) != std::string::npos) return;
    if (!text.empty()) text += "; ";
    text += part;
  };
  if (auto it = parsed.find("ErrorMessage"); it != parsed.end() && it->is_string()) {
    append(it->get<std::string>());
  }
  if (auto events = parsed.find("ErrorEvents"); events != parsed.end() && events->is_array()) {
    for (const auto& event : *events) {
      if (!event.is_object()) continue;
      if (auto msg = event.find("Message"); msg != event.end() && msg->is_string()) {
        append(msg->get<std::string>());
      }
    }
  }
  return Trim(text, kMaxLen);
}

HcsError::HcsError(std::string call, HResult hr, std::string detail)
    : VmError(FormatHcsFailure(call, hr, detail)),
      call_(std::move(call)),
      hr_(hr),
      detail_(std::move(detail)) {}

}  // namespace uvmshim::uvm::hcs
