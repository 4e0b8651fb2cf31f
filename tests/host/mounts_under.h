// Test helper: the mount points at or below `dir` (a plain prefix match),
// filtered here independently of host-shim's own MountPointsUnder (the code
// under test must not check itself); the table comes from the base library's
// reader (common/mountinfo.h, unit-tested in tests/base).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/mountinfo.h"

namespace uvmshim::test_support {

inline std::vector<std::string> MountsUnder(const std::filesystem::path& dir) {
  std::vector<std::string> points;
  for (const auto& entry : ReadMountInfo())
    if (entry.mount_point.starts_with(dir.string())) points.push_back(entry.mount_point);
  return points;
}

}  // namespace uvmshim::test_support
