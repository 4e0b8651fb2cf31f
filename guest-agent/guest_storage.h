// MountGuestStorage / UnmountGuestStorage (proto/agent.proto): shares and
// disks the host hot-added to a running utility VM, mounted below the storage
// root with the boot rootfs code (vm/rootfs_mount.h). Throws uvmshim::Error;
// rpc_status.h turns it into a status.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "agent.pb.h"
#include "guest-agent/vm/rootfs_source.h"

namespace uvmshim::agent {
namespace pb = ::uvmshim::agent::v1;

// Where hot-added storage is mounted; the host names targets below it.
inline constexpr std::string_view kGuestStorageRoot = "/run/storage";

class GuestStorage {
 public:
  // Called before each mount with its transport (loads its kernel modules).
  using LoadModules = std::function<void(vm::RootfsSource::Kind)>;
  // `in_utility_vm` false: every call is refused (kUnimplemented: no guest).
  GuestStorage(bool in_utility_vm, std::filesystem::path root, std::filesystem::path sysfs_root = "/sys",
               LoadModules load_modules = {});
  ~GuestStorage();  // unmounts what is still mounted
  GuestStorage(const GuestStorage&) = delete;
  GuestStorage& operator=(const GuestStorage&) = delete;

  // Validates every field first (kInvalidArgument naming it), then mounts.
  // A disk that never appears: kNotFound; a failed dial or mount:
  // kFailedPrecondition with the reason; a target already mounted:
  // kAlreadyExists. Returns the block device for SCSI, "" otherwise. A
  // virtiofs share (a snapshot-restored VM's) mounts only at the cold path's
  // share path (/run/share), nodev as there.
  std::string Mount(const pb::MountGuestStorageRequest& request);
  // kNotFound unless `target` was mounted by Mount.
  void Unmount(const std::string& target);

 private:
  std::string MountShare(const vm::RootfsSource& source, const pb::MountGuestStorageRequest& request);
  std::filesystem::path CheckTarget(const std::string& target) const;
  void CheckInGuest() const;

  const bool in_utility_vm_;
  const std::filesystem::path root_;
  const std::filesystem::path sysfs_root_;
  const LoadModules load_modules_;
  std::mutex mu_;
  std::set<std::filesystem::path> mounted_;
  bool share_mounted_ = false;  // the virtiofs share (kept until power-off, as on the cold path)
};

}  // namespace uvmshim::agent
