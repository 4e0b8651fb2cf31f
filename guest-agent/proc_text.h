// Reading small /proc files without iostreams. The container init helper
// (uvm-init, a static binary in the initrd) uses these: one std::ifstream
// links libstdc++'s locale machinery, a third of the helper's size.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uvmshim::agent {

// The whole file (procfs files report size 0: read until EOF); nullopt if it
// cannot be opened or read. Stops at max_bytes.
std::optional<std::string> ReadProcText(const char* path, std::size_t max_bytes = 1 << 20);

// A decimal integer at the start of text (leading blanks skipped); nullopt if none.
std::optional<long long> ParseLeadingInt(std::string_view text);

// The mount points (field 5) of /proc/<pid>/mountinfo text, octal escapes
// (\040 for a space) decoded, in the file's order.
std::vector<std::string> MountPointsOfMountInfo(std::string_view text);

}  // namespace uvmshim::agent
