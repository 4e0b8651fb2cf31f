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

// A host path bound into the container (uvmctl run -v HOST:DEST[:ro]).
struct VolumeOption {
  std::string source;       // absolute host path, file or directory
  std::string destination;  // absolute path inside the container
  bool readonly = false;
};

struct SpecOptions {
  ProcessOptions process;
  std::string hostname;
  bool readonly_rootfs = false;
  std::vector<VolumeOption> volumes;  // appended as "rbind" mounts after the defaults
};

// The full config.json text.
std::string BuildSpecJson(const SpecOptions& options);
// Only the "process" object (for exec).
std::string BuildProcessJson(const ProcessOptions& options);

// "HOST:DEST", "HOST:DEST:ro" or "HOST:DEST:rw" (both absolute); throws
// std::invalid_argument naming the flag. The host path is not checked here.
VolumeOption ParseVolume(const std::string& text);
// ParseVolume of each, and the host path must exist (std::invalid_argument).
std::vector<VolumeOption> ParseVolumes(const std::vector<std::string>& texts);

// "UID" or "UID:GID" -> (uid, gid); throws std::invalid_argument.
std::pair<unsigned, unsigned> ParseUser(const std::string& text);

}  // namespace uvmshim::host
