#include "state_dir.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <system_error>

#include "common/private_dir.h"
#include "sandbox_share.h"

namespace uvmshim::host {
namespace fs = std::filesystem;

std::string RemoveStateDir(const fs::path& dir, EmptyParent parent) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    DetachMountsUnder(dir);
    if (auto left = MountPointsUnder(dir); !left.empty())
      return fmt::format("{}: not removed, {} mount(s) below it could not be unmounted (first: {})", dir.string(),
                         left.size(), left.front());
    fs::remove_all(dir, ec);
    if (ec) return fmt::format("remove {}: {}", dir.string(), ec.message());
  }
  if (parent == EmptyParent::kRemove) fs::remove(dir.parent_path(), ec);  // only once empty
  return {};
}

OwnedDir::OwnedDir(fs::path path, EmptyParent parent) : path_(std::move(path)), parent_(parent) {
  try {
    CreatePrivateDir(path_);
  } catch (...) {
    Remove();
    throw;
  }
}

OwnedDir& OwnedDir::operator=(OwnedDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    parent_ = other.parent_;
  }
  return *this;
}

void OwnedDir::Remove() {
  if (path_.empty()) return;
  if (auto kept = RemoveStateDir(path_, parent_); !kept.empty()) spdlog::error("{}", kept);
  path_.clear();
}

}  // namespace uvmshim::host
