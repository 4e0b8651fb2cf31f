// /proc/<pid>/mountinfo (proc(5)) read into entries, paths unescaped: the one
// reader behind the host's sandbox-share cleanup and the tests' leak checks.
// POSIX only.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace uvmshim {

struct MountInfoEntry {
  std::string root;         // the path in the filesystem mounted here ("/" for a whole one)
  std::string mount_point;  // absolute, unescaped
  std::string fs_type;      // after the " - " separator
  std::string source;
};

// Lines that do not have the fields are skipped (the kernel writes none).
std::vector<MountInfoEntry> ParseMountInfo(std::string_view text);

// Reads `file` (default: this process's view). An unreadable file gives no
// entries: callers use this to find leftovers, and /proc is always there.
std::vector<MountInfoEntry> ReadMountInfo(const std::filesystem::path& file = "/proc/self/mountinfo");

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string UnescapeMountInfoField(std::string_view field);

}  // namespace uvmshim
