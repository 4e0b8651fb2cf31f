// The parts of the OCI runtime spec (config.json) the agent uses, parsed from
// JSON with errors that name the field, e.g.
//   "spec: process.args must be a non-empty array of strings".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "guest-agent/device_rules.h"
#include "guest-agent/seccomp.h"

namespace uvmshim::agent {

// Spec JSON larger than this is refused (RESOURCE_EXHAUSTED).
inline constexpr size_t kMaxSpecBytes = 1 << 20;

class SpecError : public Error {
 public:
  explicit SpecError(std::string message) : Error(ErrorCode::kInvalidArgument, std::move(message)) {}
};

struct OciUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::optional<uint32_t> umask;
};

struct OciRlimit {
  int resource = 0;  // RLIMIT_*
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Capability numbers (CAP_*). A set that is absent in the spec is nullopt.
struct OciCapabilities {
  std::optional<std::vector<int>> bounding, effective, permitted, inheritable, ambient;
};

struct OciProcess {
  bool terminal = false;
  uint32_t console_width = 0;
  uint32_t console_height = 0;
  OciUser user;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::optional<OciCapabilities> capabilities;
  std::vector<OciRlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  std::string apparmor_profile;      // "" = none (spec_policy.cc refuses it without AppArmor)
  std::optional<int> io_priority;    // IOPRIO_PRIO_VALUE(class, priority) for ioprio_set(2)
};

struct OciMount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct OciNamespace {
  std::string type;  // pid network mount ipc uts cgroup
  std::string path;  // join an existing namespace (network, ipc, uts, pid)
};

struct OciDevice {
  std::string path;
  char type = 'c';  // c b u p
  int64_t major = 0;
  int64_t minor = 0;
  uint32_t file_mode = 0666;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct OciResources {
  std::optional<int64_t> memory_limit;
  std::optional<int64_t> pids_limit;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> cpu_quota;
  std::optional<uint64_t> cpu_period;
  std::vector<DeviceRule> devices;  // linux.resources.devices, in order
};

struct OciSpec {
  OciProcess process;
  std::string root_path;
  bool root_readonly = false;
  std::string hostname;
  std::string domainname;
  bool has_mounts = false;  // false: the spec has no "mounts" key (defaults apply)
  std::vector<OciMount> mounts;
  bool has_namespaces = false;
  std::vector<OciNamespace> namespaces;
  std::vector<OciDevice> devices;
  OciResources resources;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::map<std::string, std::string> sysctl;
  std::string rootfs_propagation;
  std::optional<SeccompProfile> seccomp;  // linux.seccomp
  std::optional<unsigned long> personality;  // PER_LINUX / PER_LINUX32

  bool HasNamespace(std::string_view type) const;
  const OciNamespace* FindNamespace(std::string_view type) const;
};

// Parses config.json text. Throws SpecError ("spec: ...") or, for JSON bigger
// than kMaxSpecBytes, SpecTooLarge.
class SpecTooLarge : public SpecError {
 public:
  using SpecError::SpecError;
};
OciSpec ParseOciSpec(std::string_view json_text);

// Parses an OCI LinuxResources object (UpdateContainer). Errors read "resources: ...".
OciResources ParseOciResources(std::string_view json_text);

// Parses an OCI Process object (ExecProcess). Errors read "process: ...".
OciProcess ParseOciProcess(std::string_view json_text);

// The mounts a spec without a "mounts" key gets: proc, /dev tmpfs, devpts,
// /dev/shm, mqueue, sysfs.
std::vector<OciMount> DefaultMounts();

// The value of NAME in an environment list ("NAME=value"), if present.
std::optional<std::string> EnvLookup(const std::vector<std::string>& env, std::string_view name);

int CapabilityFromName(std::string_view name);  // -1 when unknown
int RlimitFromName(std::string_view name);      // -1 when unknown

}  // namespace uvmshim::agent
