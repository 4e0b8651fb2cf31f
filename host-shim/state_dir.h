// A sandbox's directories on the host (state, sockets, a pod member's share
// entry): the one place they are created and removed.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

namespace uvmshim::host {

enum class EmptyParent { kKeep, kRemove };

// Lazily detaches every mount at or below `dir` (what a killed shim left),
// then removes `dir` recursively. Never recurses through a mount it could
// not detach (that could be a host volume): then it keeps `dir` and returns
// why. With EmptyParent::kRemove the parent (a namespace dir of the state
// root) goes too once empty. Returns "" when `dir` is gone.
std::string RemoveStateDir(const std::filesystem::path& dir, EmptyParent parent = EmptyParent::kKeep);

// A directory this object created (0700) and removes with RemoveStateDir
// when destroyed.
class OwnedDir {
 public:
  OwnedDir() = default;
  // Throws uvmshim::Error naming the directory.
  explicit OwnedDir(std::filesystem::path path, EmptyParent parent = EmptyParent::kRemove);
  ~OwnedDir() { Remove(); }
  OwnedDir(OwnedDir&& other) noexcept : path_(std::exchange(other.path_, {})), parent_(other.parent_) {}
  OwnedDir& operator=(OwnedDir&& other) noexcept;
  const std::filesystem::path& path() const { return path_; }
  void Remove();  // idempotent; logs when a mount kept the directory

 private:
  std::filesystem::path path_;
  EmptyParent parent_ = EmptyParent::kRemove;
};

}  // namespace uvmshim::host
