// The record a shim keeps of its sandbox in <RuntimeRoot>/<namespace>/<id>/:
// how uvmctl finds a container's shim, agent and console (ps, exec, console,
// logs), and how `shim delete` cleans up after a shim that was killed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace uvmshim::host {

struct SandboxState {
  std::string id;
  std::string ns;
  std::string bundle;
  std::string isolation;      // process | hyperv
  std::string shim_address;   // unix:///... (ttrpc task API)
  std::string debug_target;   // gRPC target of the agent's debug connection
  std::string console_log;    // UVM serial console (or the host agent's log)
  std::string status;         // created | running | stopped
  std::int64_t shim_pid = 0;
  std::int64_t host_pid = 0;  // QEMU, or the host agent
  std::int64_t task_pid = 0;  // the container's init, as the agent sees it
  std::int64_t created_unix = 0;
  std::string sandbox_id;     // the pod's sandbox (== id for the sandbox task or a lone container)
};

std::filesystem::path StateDir(const std::string& ns, const std::string& id);
// Written atomically (temp file + rename).
void WriteState(const std::filesystem::path& dir, const SandboxState& state);
std::optional<SandboxState> ReadState(const std::filesystem::path& dir);
// Every sandbox under RuntimeRoot(), all namespaces, sorted by creation.
std::vector<SandboxState> ListStates();
// The host cgroup parent of a process-isolation sandbox.
std::string SandboxCgroupParent(const std::string& ns, const std::string& id);
// SIGKILLs every process in that cgroup subtree (every v1 hierarchy or the v2
// tree) and removes the cgroups; returns how many processes it killed.
int KillSandboxCgroups(const std::string& cgroup_parent);

// Finds the sandbox of a container id (any namespace unless ns is given);
// throws std::runtime_error when none or several match.
SandboxState FindState(const std::string& id, const std::string& ns = "");

}  // namespace uvmshim::host
