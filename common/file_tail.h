// The end of a (log) file, for error messages: the VM's console and QEMU's
// log, the process agent's log, HCS's console. Std-only.
#pragma once

#include <cstddef>
#include <filesystem>
#include <limits>
#include <string>

namespace uvmshim {

struct TailLimits {
  std::size_t max_bytes = 64 * 1024;  // read at most this much from the end
  std::size_t max_lines = std::numeric_limits<std::size_t>::max();
};

// The last lines of `file` within the limits, each ending in '\n' ("\r\n"
// becomes "\n"); "" when the file is missing or empty. The first line may be
// cut when max_bytes falls inside it.
std::string ReadFileTail(const std::filesystem::path& file, TailLimits limits = {});

}  // namespace uvmshim
