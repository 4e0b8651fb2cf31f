// Container and exec ids: [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 characters.
#pragma once

#include <string>
#include <string_view>

namespace uvmshim::agent {

inline constexpr size_t kMaxIdLength = 76;

bool IsValidId(std::string_view id);

// "" when valid, else why not (for an INVALID_ARGUMENT message); `what` names
// the field, e.g. "container id".
std::string IdError(std::string_view what, std::string_view id);

}  // namespace uvmshim::agent
