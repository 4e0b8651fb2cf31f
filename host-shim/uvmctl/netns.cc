#include "uvmctl/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace uvmshim::uvmctl {
namespace fs = std::filesystem;

namespace {

std::runtime_error Errno(const std::string& what) {
  return std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// As iproute2: make `dir` a shared mount (binding it on itself first when it
// is not a mount point), so a later unmount of a namespace file propagates to
// mount namespaces created meanwhile (a container's would otherwise keep the
// network namespace alive).
void MakeSharedMountPoint(const fs::path& dir) {
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return;
  if (errno != EINVAL) throw Errno(fmt::format("make {} a shared mount", dir.string()));
  if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0)
    throw Errno(fmt::format("bind {} on itself", dir.string()));
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0)
    throw Errno(fmt::format("make {} a shared mount", dir.string()));
}

}  // namespace

fs::path CreateNamedNetns(const fs::path& dir, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw std::runtime_error(fmt::format("network namespace name \"{}\": not a file name", name));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error(fmt::format("create {}: {}", dir.string(), ec.message()));
  MakeSharedMountPoint(dir);
  const fs::path path = dir / name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) throw Errno(fmt::format("create network namespace file {}", path.string()));
  ::close(fd);
  // A thread of its own enters the new namespace; uvmctl's other threads keep theirs.
  std::string error;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      error = fmt::format("unshare(CLONE_NEWNET): {}", std::strerror(errno));
      return;
    }
    // /proc/thread-self: /proc/self/ns/net would name the main thread's namespace.
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
      error = fmt::format("bind the new network namespace on {}: {}", path.string(), std::strerror(errno));
  }).join();
  if (!error.empty()) {
    ::unlink(path.c_str());
    throw std::runtime_error(error);
  }
  return path;
}

void RemoveNamedNetns(const fs::path& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    throw Errno(fmt::format("unmount network namespace {}", path.string()));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw Errno(fmt::format("remove network namespace file {}", path.string()));
}

unsigned long CurrentNetnsInode() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) throw Errno("stat /proc/thread-self/ns/net");
  return static_cast<unsigned long>(st.st_ino);
}

}  // namespace uvmshim::uvmctl
