// The bind mounts of an OCI spec as the host sees them: which entries of
// "mounts" bring a host path into the container, checked before anything is
// set up, so bad input fails with the entry's name and leaves nothing behind.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace uvmshim::host {

struct BindMount {
  std::size_t index = 0;  // position in the spec's "mounts"
  std::string source;     // host path, as written in the spec
  std::string destination;
  bool readonly = false;   // an "ro" option (the last of ro/rw wins, as mount(8))
  bool recursive = false;  // "rbind"
  bool directory = false;  // the source is a directory (else a file)
  // "mounts[2] (destination /data)": how errors name the entry.
  std::string Describe() const;
};

// The mounts that are binds: type "bind", or any type with a bind/rbind
// option (the agent's rule, guest-agent/mounts.cc). Throws
// std::invalid_argument naming the entry for a missing or relative source or
// an empty or relative destination. `for_utility_vm` (hyperv) also refuses a
// bind source that is neither a file nor a directory, and every other mount
// type than the kernel's own file systems (proc, sysfs, tmpfs, devpts,
// mqueue, cgroup): their sources would name paths or devices of the VM, not
// of the host (devtmpfs would even show the agent's channel). Process
// isolation takes sockets, devices and other types as runc does.
std::vector<BindMount> BindMountsOf(const nlohmann::json& spec, bool for_utility_vm);

// The mount flags a bind of `path` keeps from the mount it is on (nosuid,
// nodev, noexec...), for a read-only remount that must not clear them.
unsigned long MountFlagsOf(const std::filesystem::path& path);

}  // namespace uvmshim::host
