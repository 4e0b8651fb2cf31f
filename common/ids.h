// The one id rule of every part (shim, uvmctl, agent, VM manager): container,
// exec, sandbox and VM ids as containerd makes them,
// [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters (CRI uses 64 hex).
// Header-only and std-only: the agent, the Windows build and the host share it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace uvmshim {

inline constexpr std::size_t kMaxIdLength = 76;

inline bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool previous_was_alnum = false;
  for (char c : id) {
    if (alnum(c)) {
      previous_was_alnum = true;
    } else if ((c == '.' || c == '_' || c == '-') && previous_was_alnum) {
      previous_was_alnum = false;
    } else {
      return false;
    }
  }
  return previous_was_alnum;  // no trailing separator
}

// "" when valid, else why not; `what` names the field, e.g. "container id".
inline std::string IdError(std::string_view what, std::string_view id) {
  if (IsValidId(id)) return {};
  const std::string shown(id.substr(0, 100));
  if (id.empty()) return std::string(what) + " is empty";
  if (id.size() > kMaxIdLength)
    return std::string(what) + " \"" + shown + (id.size() > 100 ? "..." : "") + "\" is longer than " +
           std::to_string(kMaxIdLength) + " characters";
  return std::string(what) + " \"" + shown + "\" is invalid: it must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*";
}

}  // namespace uvmshim
