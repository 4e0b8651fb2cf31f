// Test helper shared by suites that drive `ip` and other tools: runs a shell
// command, returns its stdout and stderr together, and its wait status.
#pragma once

#include <array>
#include <cstdio>
#include <string>

namespace uvmshim::test_support {

inline std::string Shell(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  std::array<char, 4096> buffer;
  while (std::fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  const int rc = ::pclose(pipe);
  if (status) *status = rc;
  return out;
}

}  // namespace uvmshim::test_support
