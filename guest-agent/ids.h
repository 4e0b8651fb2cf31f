// Container and exec ids: the project's one rule (common/ids.h).
#pragma once

#include "common/ids.h"

namespace uvmshim::agent {

using ::uvmshim::IdError;
using ::uvmshim::IsValidId;
using ::uvmshim::kMaxIdLength;

}  // namespace uvmshim::agent
