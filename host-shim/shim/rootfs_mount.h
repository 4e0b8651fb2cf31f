// Mounts the rootfs containerd hands to Create (a bind or overlay mount from
// the snapshotter) onto <bundle>/rootfs, and unmounts it when destroyed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace uvmshim::shim {

struct MountSpec {
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

// mount(2) flags and the data string for containerd-style options
// ("ro", "rbind", "lowerdir=..."): exposed for tests.
struct MountArgs {
  unsigned long flags = 0;
  std::string data;
};
MountArgs ToMountArgs(const MountSpec& mount);

class RootfsMount {
 public:
  RootfsMount() = default;
  // Throws std::runtime_error naming the mount and errno.
  RootfsMount(const std::vector<MountSpec>& mounts, const std::filesystem::path& target);
  ~RootfsMount();
  RootfsMount(RootfsMount&& other) noexcept;
  RootfsMount& operator=(RootfsMount&& other) noexcept;

  void Unmount();

 private:
  std::filesystem::path target_;
  int mounted_ = 0;
};

// Unmounts everything at target (after a crash); true if something was mounted.
bool UnmountAll(const std::filesystem::path& target);

}  // namespace uvmshim::shim
