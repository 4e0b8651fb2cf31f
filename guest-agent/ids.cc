#include "guest-agent/ids.h"

namespace uvmshim::agent {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool IsSeparator(char c) { return c == '.' || c == '_' || c == '-'; }

}  // namespace

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  bool previous_was_alnum = false;
  for (char c : id) {
    if (IsAlnum(c)) {
      previous_was_alnum = true;
    } else if (IsSeparator(c) && previous_was_alnum) {
      previous_was_alnum = false;
    } else {
      return false;
    }
  }
  return previous_was_alnum;  // no trailing separator
}

std::string IdError(std::string_view what, std::string_view id) {
  if (IsValidId(id)) return {};
  std::string shown(id.substr(0, 100));
  if (id.empty()) return std::string(what) + " is empty";
  if (id.size() > kMaxIdLength)
    return std::string(what) + " \"" + shown + (id.size() > 100 ? "..." : "") + "\" is longer than " +
           std::to_string(kMaxIdLength) + " characters";
  return std::string(what) + " \"" + shown +
         "\" is invalid: it must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*";
}

}  // namespace uvmshim::agent
