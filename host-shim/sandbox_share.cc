#include "sandbox_share.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/ids.h"
#include "common/mountinfo.h"
#include "container_mounts.h"
#include "paths.h"
#include "uvm/utility_vm.h"

namespace uvmshim::host {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void Fail(const std::string& what, int error) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(error)));
}

void Mount(const fs::path& source, const fs::path& target, unsigned long flags, const std::string& what) {
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), nullptr, flags, nullptr) != 0)
    Fail(what, errno);
}

// An empty file or directory to mount on, as runc does for file and directory binds.
void CreateMountPoint(const fs::path& path, bool directory) {
  if (directory) {
    if (::mkdir(path.c_str(), 0700) != 0) Fail("mkdir " + path.string(), errno);
    return;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) Fail("create " + path.string(), errno);
  ::close(fd);
}

bool IsDevShm(const std::string& destination) {
  std::string normal = fs::path(destination).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal == "/dev/shm";
}

}  // namespace

std::vector<std::string> MountPointsUnder(const fs::path& dir) {
  std::string base = fs::absolute(dir).lexically_normal().string();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::vector<std::string> points;
  for (auto& entry : ReadMountInfo())
    if (entry.mount_point == base || entry.mount_point.starts_with(base + "/")) points.push_back(std::move(entry.mount_point));
  std::stable_sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return points;
}

std::vector<std::string> DetachMountsUnder(const fs::path& dir) {
  const auto points = MountPointsUnder(dir);
  std::vector<std::string> failed;
  for (const auto& point : points) {
    if (::umount2(point.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT) {
      spdlog::warn("unmount {}: {}", point, std::strerror(errno));
      failed.push_back(point);
    }
  }
  return failed;
}

SandboxShare::SandboxShare(fs::path dir) : dir_(std::move(dir)) {
  staging_ = dir_.parent_path() / (dir_.filename().string() + "-staging");
  try {
    for (const auto& d : {dir_, staging_}) {
      fs::create_directories(d);
      if (::chmod(d.c_str(), 0700) != 0) Fail("chmod " + d.string(), errno);
      Mount(d, d, MS_BIND, "bind " + d.string() + " on itself");
    }
    // A peer group of its own: binds added below propagate to virtiofsd's
    // (slave) copy, and nothing propagates back to the parent mount.
    Mount({}, dir_, MS_PRIVATE, "make " + dir_.string() + " private");
    Mount({}, dir_, MS_SHARED, "make " + dir_.string() + " shared");
    Mount({}, staging_, MS_PRIVATE, "make " + staging_.string() + " private");
  } catch (const std::exception& e) {
    DetachMountsUnder(dir_);
    DetachMountsUnder(staging_);
    std::error_code ignored;
    fs::remove(dir_, ignored);
    fs::remove(staging_, ignored);
    throw std::runtime_error(fmt::format("sandbox share {}: {}", dir_.string(), e.what()));
  }
}

SandboxShare::SandboxShare(fs::path dir, Adopt)
    : dir_(std::move(dir)), staging_(dir_.parent_path() / (dir_.filename().string() + "-staging")), adopted_(true) {}

SandboxShare::~SandboxShare() {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, entry] : entries_) ids.push_back(id);
  for (const auto& id : ids) ReleaseLocked(id);
  if (adopted_) return;
  for (const auto& d : {dir_, staging_}) {
    if (DetachMountsUnder(d).empty()) {
      std::error_code ec;
      fs::remove(d, ec);
      if (ec) spdlog::warn("remove {}: {}", d.string(), ec.message());
    }
  }
}

void SandboxShare::AddBind(const std::string& entry, const std::string& name, const fs::path& source,
                           bool directory, bool recursive, bool readonly) {
  const fs::path target = dir_ / entry / name;
  const std::string what = fmt::format("bind {} at {}", source.string(), target.string());
  CreateMountPoint(target, directory);
  const unsigned long bind = MS_BIND | (recursive ? MS_REC : 0);
  if (!readonly) {
    Mount(source, target, bind, what);
    return;
  }
  // A remount does not propagate: make the read-only mount in private
  // staging first, then bind that copy (read-only, flags are cloned) here.
  const fs::path staged = staging_ / (entry + "-" + name);
  CreateMountPoint(staged, directory);
  try {
    Mount(source, staged, bind, what + " (staging)");
    Mount({}, staged, MS_BIND | MS_REMOUNT | MS_RDONLY | MountFlagsOf(staged), what + " (read-only)");
    Mount(staged, target, MS_BIND | MS_REC, what);
  } catch (...) {
    DetachMountsUnder(staged);
    std::error_code ignored;
    fs::remove(staged, ignored);
    throw;
  }
  DetachMountsUnder(staged);
  std::error_code ignored;
  fs::remove(staged, ignored);
}

GuestContainer SandboxShare::Prepare(const std::string& container_id, const fs::path& host_rootfs,
                                     const std::string& spec_json) {
  if (!IsValidId(container_id)) throw std::invalid_argument(fmt::format("container id \"{}\": not valid", container_id));
  nlohmann::json spec;
  try {
    spec = nlohmann::json::parse(spec_json);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(fmt::format("container {}: spec: {}", container_id, e.what()));
  }
  const auto binds = BindMountsOf(spec, /*for_utility_vm=*/true);
  std::error_code ec;
  if (!fs::is_directory(host_rootfs, ec))
    throw std::invalid_argument(fmt::format("container {}: rootfs {}: not a directory", container_id,
                                            host_rootfs.string()));

  std::lock_guard lock(mu_);
  if (entries_.contains(container_id))
    throw std::invalid_argument(fmt::format("container {}: already in the sandbox share", container_id));
  // A name this share never used (see the header); one left by an earlier
  // owner of an adopted share is skipped, never reused.
  std::string entry_name;
  for (;;) {
    entry_name = fmt::format("{}@{}", container_id, ++prepared_);
    const fs::path entry_dir = dir_ / entry_name;
    if (::mkdir(entry_dir.c_str(), 0700) == 0) break;
    if (errno != EEXIST) Fail("mkdir " + entry_dir.string(), errno);
  }
  entries_.emplace(container_id, entry_name);
  const std::string guest_dir = fmt::format("{}/{}", uvm::kGuestSharePath, entry_name);
  try {
    AddBind(entry_name, "rootfs", host_rootfs, /*directory=*/true, /*recursive=*/true, /*readonly=*/false);
    for (const auto& bind : binds) {
      auto& entry = spec["mounts"][bind.index];
      if (IsDevShm(bind.destination)) {
        entry["source"] = kGuestSandboxShmPath;
        continue;
      }
      const std::string name = fmt::format("m{}", bind.index);
      try {
        AddBind(entry_name, name, bind.source, bind.directory, bind.recursive, bind.readonly);
      } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("{}: {}", bind.Describe(), e.what()));
      }
      entry["source"] = guest_dir + "/" + name;
    }
  } catch (...) {
    ReleaseLocked(container_id);
    throw;
  }
  spdlog::debug("sandbox share: container {} prepared in {} ({} bind mounts)", container_id, entry_name, binds.size());
  return {guest_dir + "/rootfs", spec.dump()};
}

void SandboxShare::Release(const std::string& container_id) {
  std::lock_guard lock(mu_);
  ReleaseLocked(container_id);
}

void SandboxShare::ReleaseLocked(const std::string& container_id) {
  const auto found = entries_.find(container_id);
  if (found == entries_.end()) return;
  const fs::path container_dir = dir_ / found->second;
  std::error_code ec;
  if (fs::exists(container_dir, ec)) {
    if (auto failed = DetachMountsUnder(container_dir); !failed.empty()) {
      spdlog::error("sandbox share: container {}: {} mount(s) stay (first: {})", container_id, failed.size(),
                    failed.front());
      return;  // never remove through a mount: it may be a host volume
    }
    // Only the now empty mount points are left: remove them one by one.
    for (const auto& entry : fs::directory_iterator(container_dir, ec)) {
      std::error_code removed;
      fs::remove(entry.path(), removed);
      if (removed) spdlog::warn("sandbox share: remove {}: {}", entry.path().string(), removed.message());
    }
    fs::remove(container_dir, ec);
    if (ec) spdlog::warn("sandbox share: remove {}: {}", container_dir.string(), ec.message());
  }
  entries_.erase(found);
}

std::vector<fs::path> ShareEntriesOf(const fs::path& share_dir, const std::string& container_id) {
  std::vector<fs::path> entries;
  if (!IsValidId(container_id)) return entries;
  const std::string prefix = container_id + "@";
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(share_dir, ec)) {
    const std::string name = item.path().filename().string();
    if (name.starts_with(prefix) && name.size() > prefix.size() &&
        name.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
      entries.push_back(item.path());
  }
  return entries;
}

}  // namespace uvmshim::host
