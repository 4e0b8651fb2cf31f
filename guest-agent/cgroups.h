// Per-container cgroups, for Stats, limits and killing everything a
// container started. cgroup v2 when /sys/fs/cgroup/cgroup.controllers exists,
// else the v1 hierarchies of cpu, cpuacct, memory, pids and devices wherever
// they are mounted. Created as <parent>/<container id> under each hierarchy's root.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "guest-agent/device_rules.h"
#include "guest-agent/oci_spec.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {

struct CgroupStats {
  uint64_t cpu_usage_ns = 0;
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_limit_bytes = 0;
  uint64_t memory_max_usage_bytes = 0;
  uint64_t pids_current = 0;
  uint64_t pids_limit = 0;
};

class Cgroup {
 public:
  // nullptr (and *warning set) when cgroups are unavailable; the container
  // then runs without one.
  // `root` is where cgroup v2 would be mounted (tests use another v2 mount).
  static std::unique_ptr<Cgroup> Create(const std::string& parent, const std::string& name,
                                        const OciResources& resources, std::string* warning,
                                        const std::string& root = "/sys/fs/cgroup");
  ~Cgroup();  // removes the directories (best effort, logged)
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // Opened files (close-on-exec) a child writes "0" to, to join the cgroup
  // before it execs: v1 `tasks`, v2 `cgroup.procs`. The child is one thread
  // (its own thread group), so moving it moves the whole process; in v1 a
  // thread moving itself skips the kernel's global threadgroup lock, whose
  // write side waits out an RCU grace period: 8-20 ms per cgroup.procs write
  // on this machine against 0.15 ms (issue #13).
  // Throws uvmshim::Error naming the file when one cannot be opened: a
  // process must never start outside a hierarchy of its container.
  std::vector<UniqueFd> OpenProcsFiles() const;

  // Enforces the device allowlist: v1 devices.deny/devices.allow, v2 a
  // BPF_CGROUP_DEVICE program. Returns "" or why it could not.
  std::string ApplyDeviceRules(const std::vector<DeviceRule>& rules);

  std::vector<pid_t> Pids() const;
  // Kills every process in the cgroup with `signal` (v2 SIGKILL: cgroup.kill).
  void KillAll(int signal) const;
  CgroupStats ReadStats() const;
  // Writes the limits `resources` sets (memory, pids, cpu; -1 = unlimited).
  // False (and *error = the first failure) when a write failed.
  bool Apply(const OciResources& resources, std::string* error) const;
  // How many processes the kernel's OOM killer killed in this cgroup.
  uint64_t OomKills() const;
  // rmdir of every directory; false while processes remain.
  bool Remove();
  // rmdir of <parent> (and its ancestors below the roots) where empty; at
  // agent exit.
  static void RemoveParent(const std::string& parent, const std::string& root = "/sys/fs/cgroup");
  bool is_v2() const { return v2_; }
  const std::vector<std::string>& directories() const { return directories_; }

 private:
  Cgroup() = default;
  std::string FileIn(const std::string& controller, const std::string& file) const;

  bool v2_ = false;
  bool removed_ = false;
  std::vector<std::string> directories_;              // every created dir
  std::vector<std::pair<std::string, std::string>> controller_dirs_;  // controller -> dir (v1)
};

// Moves the calling process (single-threaded: a child between fork and exec)
// into every file of OpenProcsFiles. Returns 0, or the errno of the first
// write that failed: the caller fails the create or exec, as runc does, since
// a process outside its cgroup escapes the container's limits and device
// rules. System calls only (async-signal-safe).
int JoinProcsFiles(const std::vector<UniqueFd>& files) noexcept;

}  // namespace uvmshim::agent
