// The `uvm-agent __init` helper: the first process of a new container.
//
// The agent clones it into the new namespaces and it immediately re-executes
// /proc/self/exe with kInitHelperArg, so the setup below runs in a fresh
// single-threaded process: mounts, pivot_root, hostname, pty, rlimits, user,
// capabilities, cwd. It then reports kReady on the sync socket and waits for
// kStart, and execs the user's command (which so becomes PID 1 of the
// container's pid namespace). Errors go back as kError messages.
//
// File descriptors on entry: 0-2 the process's stdio (/dev/null with a
// terminal), kInitConfigFd the InitConfig JSON (a memfd), kInitSyncFd the
// sync socket.
#pragma once

#include <string>

namespace uvmshim::agent {

inline constexpr const char* kInitHelperArg = "__init";
inline constexpr int kInitConfigFd = 3;
inline constexpr int kInitSyncFd = 4;

struct InitConfig {
  std::string spec_json;   // the container's config.json
  std::string rootfs;      // absolute path as the agent sees it
  bool terminal = false;
  bool new_network_namespace = false;  // bring up lo
  std::string seccomp_hex;  // the compiled linux.seccomp filter, "" = none
  unsigned int seccomp_flags = 0;
  bool namespaces_joined = false;  // the agent joined linux.namespaces[].path before the helper ran

  std::string ToJson() const;
  static InitConfig FromJson(const std::string& text);  // throws
};

// main() of the helper; never returns on success (the user's command runs).
int RunContainerInitHelper();

}  // namespace uvmshim::agent
