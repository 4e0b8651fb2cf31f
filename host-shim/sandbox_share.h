// The one directory a sandbox shares with its utility VM (one virtiofsd per
// UVM): <sandbox state dir>/share, seen by the guest at /run/share. For each
// container the shim bind-mounts into it, under an entry of its own,
//   share/<container id>@<n>/rootfs   the container's rootfs
//   share/<container id>@<n>/m<N>     the source of the spec's mounts[N] (file or directory)
// and tells the agent those guest paths instead of the host's. <n> counts the
// share's Prepare calls, so no entry name is ever used twice in one VM: the
// guest's virtiofs caches a name's dentry for ~1 s, and a container re-created
// with the id of one just released would otherwise get the old, removed
// directory's dentry; when that dentry is revalidated (a lookup after the 1 s)
// the kernel finds a new inode, invalidates it and detaches every mount on it,
// the agent's bind of the rootfs included ("move rootfs ...: Invalid argument").
// ('@' is not allowed in ids, so no other container's entry can look alike.) The share is a
// mount point of its own with shared propagation, so binds added while
// virtiofsd runs (a container joining a running pod) reach virtiofsd's mount
// namespace, a slave of the host's. Read-only binds are read-only on the host
// too (defence in depth; the agent enforces "ro" in the guest as well).
#pragma once

#include <filesystem>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent_host.h"

namespace uvmshim::host {

// The guest tmpfs that stands for a pod's /dev/shm in a utility VM (created
// by the agent on first use, shared by the pod's containers).
inline constexpr const char* kGuestSandboxShmPath = "/run/sandbox-shm";

class SandboxShare {
 public:
  // Creates `dir` (0700) and makes it a shared mount point of its own; throws
  // std::runtime_error naming the step.
  explicit SandboxShare(std::filesystem::path dir);
  // Uses a share another process made and owns (a warm pool VM's keeper,
  // host-shim/pool/): containers come and go as usual, the share itself and
  // its staging dir stay for the owner to remove.
  struct Adopt {};
  SandboxShare(std::filesystem::path dir, Adopt);
  ~SandboxShare();  // releases every container, unmounts and removes the share
  SandboxShare(const SandboxShare&) = delete;
  SandboxShare& operator=(const SandboxShare&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

  // Binds the container's rootfs and bind sources into a fresh entry of the share and returns
  // the rootfs and spec with guest paths. A bind at /dev/shm becomes the
  // sandbox's guest tmpfs. Throws std::invalid_argument naming the mount for
  // bad input; on any failure nothing of the container stays in the share.
  GuestContainer Prepare(const std::string& container_id, const std::filesystem::path& host_rootfs,
                         const std::string& spec_json);
  // Unmounts and removes the container's entry. Idempotent.
  void Release(const std::string& container_id);

 private:
  void ReleaseLocked(const std::string& container_id);
  // Binds `source` at share/<id>/<name> (through a private staging mount when
  // read-only, so the copy virtiofsd receives is read-only too).
  void AddBind(const std::string& container_id, const std::string& name, const std::filesystem::path& source,
               bool directory, bool recursive, bool readonly);

  std::filesystem::path dir_;
  std::filesystem::path staging_;  // private mount next to the share
  std::mutex mu_;
  std::map<std::string, std::string> entries_;  // container id -> its entry's name
  std::uint64_t prepared_ = 0;                   // Prepare calls so far: the next entry's <n>
  bool adopted_ = false;
};

// The entries of `container_id` in the share `share_dir` (share/<id>@<n>),
// for a `shim delete` that cleans up after a pod's dead shim.
std::vector<std::filesystem::path> ShareEntriesOf(const std::filesystem::path& share_dir,
                                                  const std::string& container_id);

// Mount points at or below `dir` (from /proc/self/mountinfo), deepest first.
std::vector<std::string> MountPointsUnder(const std::filesystem::path& dir);

// Lazily unmounts every mount at or below `dir`, deepest first (what a killed
// shim left). Returns the mount points that could not be unmounted.
std::vector<std::string> DetachMountsUnder(const std::filesystem::path& dir);

}  // namespace uvmshim::host
