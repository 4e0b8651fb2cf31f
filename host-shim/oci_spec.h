// Builds the OCI runtime spec uvmctl hands to the agent (the same defaults
// `runc spec` and containerd use), from command-line level options.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace uvmshim::host {

struct ProcessOptions {
  std::vector<std::string> args;
  std::vector<std::string> env;  // K=V, added to/overriding the defaults
  std::string cwd = "/";
  unsigned uid = 0;
  unsigned gid = 0;
  bool terminal = false;
};

struct SpecOptions {
  ProcessOptions process;
  std::string hostname;
  bool readonly_rootfs = false;
};

// The full config.json text.
std::string BuildSpecJson(const SpecOptions& options);
// Only the "process" object (for exec).
std::string BuildProcessJson(const ProcessOptions& options);

// "UID" or "UID:GID" -> (uid, gid); throws std::invalid_argument.
std::pair<unsigned, unsigned> ParseUser(const std::string& text);

}  // namespace uvmshim::host
