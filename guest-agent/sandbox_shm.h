// A pod's /dev/shm in a utility VM: one tmpfs per sandbox at
// kSandboxShmPath, shared by the pod's containers. The host shim turns a bind
// at /dev/shm into a bind of this path (the host's tmpfs cannot be shared
// into the guest as memory); the agent mounts it the first time a spec binds
// it. Only in a utility VM: on the host the path would be the host's.
#pragma once

#include <mutex>

#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {

inline constexpr const char* kSandboxShmPath = "/run/sandbox-shm";
inline constexpr const char* kDefaultSandboxShmSize = "64m";  // containerd's default for a pod

class SandboxShm {
 public:
  // Mounts the tmpfs if `spec` binds kSandboxShmPath and it is not mounted
  // yet; its size comes from a "size=" option of that mount (else 64m).
  // Throws std::invalid_argument for a malformed size, std::runtime_error
  // when the mount fails.
  void EnsureFor(const OciSpec& spec);

 private:
  std::mutex mu_;
  bool mounted_ = false;
};

}  // namespace uvmshim::agent
