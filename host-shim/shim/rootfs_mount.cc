#include "shim/rootfs_mount.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <utility>

namespace uvmshim::shim {

MountArgs ToMountArgs(const MountSpec& mount) {
  static const std::map<std::string, std::pair<bool, unsigned long>> kFlags = {
      {"ro", {true, MS_RDONLY}},        {"rw", {false, MS_RDONLY}},
      {"bind", {true, MS_BIND}},        {"rbind", {true, MS_BIND | MS_REC}},
      {"nosuid", {true, MS_NOSUID}},    {"suid", {false, MS_NOSUID}},
      {"nodev", {true, MS_NODEV}},      {"dev", {false, MS_NODEV}},
      {"noexec", {true, MS_NOEXEC}},    {"exec", {false, MS_NOEXEC}},
      {"noatime", {true, MS_NOATIME}},  {"relatime", {true, MS_RELATIME}},
      {"sync", {true, MS_SYNCHRONOUS}}, {"async", {false, MS_SYNCHRONOUS}},
  };
  MountArgs args;
  for (const auto& option : mount.options) {
    if (auto it = kFlags.find(option); it != kFlags.end()) {
      if (it->second.first) args.flags |= it->second.second;
      else args.flags &= ~it->second.second;
    } else {
      if (!args.data.empty()) args.data += ',';
      args.data += option;
    }
  }
  return args;
}

RootfsMount::RootfsMount(const std::vector<MountSpec>& mounts, const std::filesystem::path& target)
    : target_(target) {
  for (const auto& mount : mounts) {
    MountArgs args = ToMountArgs(mount);
    const char* type = mount.type == "bind" ? nullptr : mount.type.c_str();
    if (::mount(mount.source.c_str(), target.c_str(), type, args.flags,
                args.data.empty() ? nullptr : args.data.c_str()) != 0) {
      int error = errno;
      Unmount();
      throw std::runtime_error(fmt::format("mount rootfs ({} {} on {}): {}", mount.type,
                                           mount.source, target.string(), std::strerror(error)));
    }
    ++mounted_;
    // A read-only bind needs a remount to take effect.
    if ((args.flags & MS_BIND) && (args.flags & MS_RDONLY))
      ::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr);
  }
}

RootfsMount::~RootfsMount() { Unmount(); }

RootfsMount::RootfsMount(RootfsMount&& other) noexcept
    : target_(std::move(other.target_)), mounted_(std::exchange(other.mounted_, 0)) {}

RootfsMount& RootfsMount::operator=(RootfsMount&& other) noexcept {
  if (this != &other) {
    Unmount();
    target_ = std::move(other.target_);
    mounted_ = std::exchange(other.mounted_, 0);
  }
  return *this;
}

void RootfsMount::Unmount() {
  while (mounted_ > 0) {
    if (::umount2(target_.c_str(), 0) != 0 && ::umount2(target_.c_str(), MNT_DETACH) != 0) {
      spdlog::error("unmount {}: {}", target_.string(), std::strerror(errno));
      break;
    }
    --mounted_;
  }
  mounted_ = 0;
}

bool UnmountAll(const std::filesystem::path& target) {
  bool any = false;
  for (int i = 0; i < 16 && ::umount2(target.c_str(), MNT_DETACH) == 0; ++i) any = true;
  return any;
}

}  // namespace uvmshim::shim
