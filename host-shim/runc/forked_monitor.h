// The one recipe by which `create` and `exec --detach` start a monitor
// process: fork, let the child report readiness ("ok" or its error text) on a
// pipe, and return once that pipe closes; then the pid file, written whole
// (a rename) so that the caller never reads half a pid.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>

#include "common/unique_fd.h"

namespace uvmshim::runc {

struct ForkedMonitor {
  pid_t pid = -1;
  std::string answer;  // "ok", the child's error, or "" when it ended without a word
  bool ready() const { return answer == "ok"; }
};

// Forks; the child runs `body` with the pipe's write end and _exit()s with
// its result. Throws std::runtime_error when the pipe or fork fails.
ForkedMonitor ForkMonitor(const std::function<int(UniqueFd ready)>& body);

void WritePidFile(const std::filesystem::path& file, pid_t pid);

}  // namespace uvmshim::runc
