#include "guest-agent/guest_storage.h"

#include <sys/mount.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <system_error>
#include <thread>

#include "common/error.h"
#include "guest-agent/vm/pid1.h"
#include "guest-agent/vm/rootfs_mount.h"

namespace uvmshim::agent {
namespace {

namespace fs = std::filesystem;

constexpr unsigned kDefaultWaitMs = 30000;  // TCG guests scan SCSI slowly
constexpr unsigned kMaxWaitMs = 300000;
constexpr unsigned kMaxScsiController = 3;   // Hyper-V offers 4 controllers
constexpr unsigned kMaxScsiLun = 63;         // 64 LUNs each

Error Invalid(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

vm::RootfsSource SourceOf(const pb::MountGuestStorageRequest& request) {
  vm::RootfsSource source;
  switch (request.source_case()) {
    case pb::MountGuestStorageRequest::kPlan9: {
      const auto& share = request.plan9();
      if (share.share().empty()) throw Invalid("plan9.share: empty");
      if (share.share().find_first_of(",\n") != std::string::npos || share.share().find('\0') != std::string::npos)
        throw Invalid("plan9.share \"" + share.share() + "\": a comma or control character would end the aname");
      if (share.vsock_port() == 0) throw Invalid("plan9.vsock_port: 0");
      source.kind = vm::RootfsSource::Kind::kPlan9Vsock;
      source.tag = share.share();
      source.vsock_port = share.vsock_port();
      return source;
    }
    case pb::MountGuestStorageRequest::kScsi: {
      const auto& disk = request.scsi();
      if (disk.controller() > kMaxScsiController)
        throw Invalid("scsi.controller " + std::to_string(disk.controller()) + ": at most " +
                      std::to_string(kMaxScsiController));
      if (disk.lun() > kMaxScsiLun)
        throw Invalid("scsi.lun " + std::to_string(disk.lun()) + ": at most " + std::to_string(kMaxScsiLun));
      source.kind = vm::RootfsSource::Kind::kScsiDisk;
      source.scsi_controller = disk.controller();
      source.scsi_lun = disk.lun();
      return source;
    }
    case pb::MountGuestStorageRequest::kVirtiofs: {
      const std::string& tag = request.virtiofs().tag();
      if (tag.empty()) throw Invalid("virtiofs.tag: empty");
      if (tag.size() > 36) throw Invalid("virtiofs.tag \"" + tag + "\": longer than 36 bytes");
      for (char c : tag)
        if (static_cast<unsigned char>(c) < 0x20 || c == ',') throw Invalid("virtiofs.tag: a comma or control character");
      source.kind = vm::RootfsSource::Kind::kVirtiofs;
      source.tag = tag;
      return source;
    }
    case pb::MountGuestStorageRequest::SOURCE_NOT_SET:
      break;
  }
  throw Invalid("source: none of plan9, scsi, virtiofs is set");
}

}  // namespace

GuestStorage::GuestStorage(bool in_utility_vm, fs::path root, fs::path sysfs_root, LoadModules load_modules)
    : in_utility_vm_(in_utility_vm),
      root_(std::move(root)),
      sysfs_root_(std::move(sysfs_root)),
      load_modules_(std::move(load_modules)) {}

GuestStorage::~GuestStorage() {
  std::lock_guard lock(mu_);
  for (const auto& target : mounted_)
    if (::umount2(target.c_str(), MNT_DETACH) != 0)
      spdlog::warn("event=guest_storage_unmount_failed path={} error=\"{}\"", target.string(), std::strerror(errno));
}

void GuestStorage::CheckInGuest() const {
  if (!in_utility_vm_)
    throw Error(ErrorCode::kUnimplemented,
                "guest storage exists only in a utility VM (this agent runs as a host process: process "
                "isolation has no guest to hot-add shares or disks to)");
}

// Lexical on purpose: the root is the agent's own directory, created by it
// and never given to a container, so nothing below it is a symlink planted
// by a guest process; ".." is refused outright rather than resolved.
fs::path GuestStorage::CheckTarget(const std::string& target) const {
  if (target.empty()) throw Invalid("target: empty");
  const fs::path path(target);
  if (!path.is_absolute()) throw Invalid("target \"" + target + "\": not an absolute path");
  for (const auto& part : path)
    if (part == "..") throw Invalid("target \"" + target + "\": contains \"..\"");
  const fs::path normal = path.lexically_normal();
  const fs::path relative = normal.lexically_relative(root_);
  if (relative.empty() || relative == "." || *relative.begin() == "..")
    throw Invalid("target \"" + target + "\": not below the storage root " + root_.string());
  return normal;
}

std::string GuestStorage::Mount(const pb::MountGuestStorageRequest& request) {
  CheckInGuest();
  const vm::RootfsSource source = SourceOf(request);
  if (request.wait_ms() > kMaxWaitMs)
    throw Invalid("wait_ms " + std::to_string(request.wait_ms()) + ": at most " + std::to_string(kMaxWaitMs));
  if (source.kind == vm::RootfsSource::Kind::kVirtiofs) return MountShare(source, request);
  const fs::path target = CheckTarget(request.target());

  std::lock_guard lock(mu_);
  if (mounted_.count(target)) throw Error(ErrorCode::kAlreadyExists, target.string() + ": already mounted");
  vm::RootfsMountOptions options;
  options.read_only = request.read_only();
  options.extra_flags = MS_NODEV | MS_NOSUID;  // host-provided content: no devices, no setuid
  options.sysfs_root = sysfs_root_;
  options.scsi_wait = std::chrono::milliseconds(request.wait_ms() ? request.wait_ms() : kDefaultWaitMs);

  // The transport's drivers load on first use only (no boot time spent on
  // them): virtio_scsi/hv_storvsc then scans the controller, 9p registers.
  if (load_modules_) load_modules_(source.kind);
  std::string device;
  try {
    if (source.kind == vm::RootfsSource::Kind::kScsiDisk)
      device = vm::FindScsiDisk(source.scsi_controller, source.scsi_lun, sysfs_root_, options.scsi_wait).string();
  } catch (const std::runtime_error& e) {
    throw Error(ErrorCode::kNotFound, e.what());
  }
  const bool created = !fs::exists(target);
  try {
    vm::MountRootfsSource(source, target, options);
  } catch (const std::exception& e) {
    std::error_code ignored;
    if (created) fs::remove(target, ignored);  // nothing left behind
    throw Error(ErrorCode::kFailedPrecondition, e.what());
  }
  mounted_.insert(target);
  spdlog::info("event=guest_storage_mounted source={} path={} read_only={}", vm::Describe(source), target.string(),
               request.read_only());
  return device;
}

// The sandbox share of a VM restored from a snapshot: mounted exactly as the
// cold path's PID 1 mounts it (vm/pid1.cc), once. The device was hot-plugged
// just before the call and its driver may not have bound yet: until then the
// kernel answers "tag not found" (EINVAL), so the mount is retried within
// wait_ms.
std::string GuestStorage::MountShare(const vm::RootfsSource& source, const pb::MountGuestStorageRequest& request) {
  if (request.target() != vm::kGuestSharePath)
    throw Invalid("target \"" + request.target() + "\": a virtiofs share mounts only at " + vm::kGuestSharePath);
  if (request.read_only()) throw Invalid("read_only: the sandbox share is read-write (as on the cold path)");
  std::lock_guard lock(mu_);
  if (share_mounted_) throw Error(ErrorCode::kAlreadyExists, std::string(vm::kGuestSharePath) + ": already mounted");
  vm::RootfsMountOptions options;
  options.extra_flags = MS_NODEV;  // as pid1.cc: setuid binaries of container images must keep working
  const auto wait = std::chrono::milliseconds(request.wait_ms() ? request.wait_ms() : kDefaultWaitMs);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    try {
      vm::MountRootfsSource(source, vm::kGuestSharePath, options);
      break;
    } catch (const std::exception& e) {
      if (std::chrono::steady_clock::now() >= deadline)
        throw Error(ErrorCode::kFailedPrecondition, std::string(e.what()) + " (waited " +
                                                        std::to_string(wait.count()) + " ms for the device)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  share_mounted_ = true;
  spdlog::info("event=guest_storage_mounted source={} path={} read_only=false", vm::Describe(source),
               vm::kGuestSharePath);
  return "";
}

void GuestStorage::Unmount(const std::string& target_text) {
  CheckInGuest();
  const fs::path target = CheckTarget(target_text);
  std::lock_guard lock(mu_);
  if (!mounted_.count(target)) throw Error(ErrorCode::kNotFound, target.string() + ": not mounted by MountGuestStorage");
  if (::umount2(target.c_str(), 0) != 0) {
    const int error = errno;
    throw Error(error == EBUSY ? ErrorCode::kFailedPrecondition : ErrorCode::kInternal,
                "unmount " + target.string() + ": " + std::strerror(error));
  }
  mounted_.erase(target);
  std::error_code ignored;
  fs::remove(target, ignored);
  spdlog::info("event=guest_storage_unmounted path={}", target.string());
}

}  // namespace uvmshim::agent
