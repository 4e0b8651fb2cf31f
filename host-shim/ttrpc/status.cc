#include "ttrpc/status.h"

#include <array>

namespace uvmshim::ttrpc {

std::string CodeName(std::int32_t code) {
  static constexpr std::array<std::string_view, 17> kNames = {
      "OK",         "Canceled",          "Unknown",          "InvalidArgument",
      "DeadlineExceeded", "NotFound",    "AlreadyExists",    "PermissionDenied",
      "ResourceExhausted", "FailedPrecondition", "Aborted",  "OutOfRange",
      "Unimplemented", "Internal",       "Unavailable",      "DataLoss",
      "Unauthenticated"};
  if (code >= 0 && static_cast<std::size_t>(code) < kNames.size()) {
    return std::string(kNames[static_cast<std::size_t>(code)]);
  }
  return "Code(" + std::to_string(code) + ")";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return CodeName(code) + ": " + message;
}

}  // namespace uvmshim::ttrpc
