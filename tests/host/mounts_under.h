// Test helper: the mount points at or below `dir`, read from
// /proc/self/mountinfo independently of host-shim's own MountPointsUnder (the
// code under test must not check itself).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace uvmshim::test_support {

inline std::vector<std::string> MountsUnder(const std::filesystem::path& dir) {
  std::vector<std::string> points;
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point.starts_with(dir.string())) points.push_back(point);
  }
  return points;
}

}  // namespace uvmshim::test_support
