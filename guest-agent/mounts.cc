#include "guest-agent/mounts.h"

#include "common/mount_flags.h"
#include "guest-agent/proc_text.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <cerrno>
#include <vector>
#include <cstring>
#include <stdexcept>

namespace uvmshim::agent {
namespace {

[[noreturn]] void Fail(const std::string& what, int error) {
  throw std::runtime_error(what + ": " + std::strerror(error));
}

struct FlagOption {
  const char* name;
  bool clear;
  unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},         {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},     {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},       {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},     {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},  {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},   {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},     {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},   {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"defaults", false, 0},
};

struct PropagationOption {
  const char* name;
  unsigned long flags;
};

constexpr PropagationOption kPropagationOptions[] = {
    {"private", MS_PRIVATE},   {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},     {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},       {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void CreateMountpoint(const std::string& path, bool directory) {
  if (directory) {
    MakeDirectories(path, 0755);
    return;
  }
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) MakeDirectories(path.substr(0, slash), 0755);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && errno != EISDIR) Fail("create mountpoint " + path, errno);
  if (fd >= 0) close(fd);
}

// The flags a bind remount must keep (the kernel refuses to clear locked ones).
unsigned long ExistingMountFlags(const std::string& path) { return MountFlagsOf(path); }

}  // namespace

MountOptions ParseMountOptions(const std::vector<std::string>& options) {
  MountOptions parsed;
  for (const auto& option : options) {
    bool known = false;
    for (const auto& entry : kFlagOptions) {
      if (option != entry.name) continue;
      known = true;
      if (entry.clear) parsed.flags &= ~entry.flag;
      else parsed.flags |= entry.flag;
    }
    for (const auto& entry : kPropagationOptions) {
      if (option != entry.name) continue;
      known = true;
      parsed.propagation.push_back(entry.flags);
    }
    if (option == "bind" || option == "rbind") {
      known = true;
      parsed.bind = true;
      parsed.recursive_bind = parsed.recursive_bind || option == "rbind";
    }
    if (!known) {
      if (!parsed.data.empty()) parsed.data += ',';
      parsed.data += option;
    }
  }
  return parsed;
}

void MakeDirectories(const std::string& path, unsigned mode) {
  if (path.empty()) return;
  std::string current;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = path.find('/', pos + 1);
    current = path.substr(0, next);
    pos = next;
    if (current.empty() || current == "/") continue;
    if (mkdir(current.c_str(), mode) != 0 && errno != EEXIST) Fail("mkdir " + current, errno);
  }
  if (!IsDirectory(path)) Fail("mkdir " + path, ENOTDIR);
}

std::string ResolveInRoot(const std::string& root, const std::string& path) {
  std::vector<std::string> pending;  // components still to resolve, reversed
  auto push_path = [&](const std::string& p) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find('/', start);
      if (end == std::string::npos) end = p.size();
      std::string part = p.substr(start, end - start);
      if (!part.empty() && part != ".") parts.push_back(part);
      start = end + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_back(*it);
  };
  push_path(path);
  std::vector<std::string> resolved;
  int links = 0;
  while (!pending.empty()) {
    std::string part = pending.back();
    pending.pop_back();
    if (part == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    std::string candidate = root;
    for (const auto& r : resolved) candidate += "/" + r;
    candidate += "/" + part;
    struct stat st {};
    if (lstat(candidate.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++links > 40) Fail("resolve " + path + " in " + root, ELOOP);
      char target[4096];
      ssize_t n = readlink(candidate.c_str(), target, sizeof target - 1);
      if (n < 0) Fail("readlink " + candidate, errno);
      target[n] = '\0';
      if (target[0] == '/') resolved.clear();
      push_path(target);
      continue;
    }
    resolved.push_back(part);
  }
  std::string out = root;
  for (const auto& r : resolved) out += "/" + r;
  return out;
}

void MountInRootfs(const std::string& rootfs, const OciMount& mount) {
  MountOptions options = ParseMountOptions(mount.options);
  std::string type = mount.type;
  if (type == "bind") options.bind = true;
  std::string target = ResolveInRoot(rootfs, mount.destination);
  std::string describe = "mount " + (mount.source.empty() ? type : mount.source) + " on " + mount.destination;
  if (options.bind) {
    struct stat st {};
    if (stat(mount.source.c_str(), &st) != 0) Fail(describe + ": source " + mount.source, errno);
    CreateMountpoint(target, S_ISDIR(st.st_mode));
    unsigned long flags = MS_BIND | (options.recursive_bind ? MS_REC : 0);
    if (::mount(mount.source.c_str(), target.c_str(), nullptr, flags, nullptr) != 0) Fail(describe, errno);
    unsigned long extra = options.flags & ~MS_REMOUNT;
    if (extra != 0) {
      unsigned long remount = MS_BIND | MS_REMOUNT | extra | ExistingMountFlags(target);
      if (::mount(nullptr, target.c_str(), nullptr, remount, nullptr) != 0) Fail(describe + " (remount)", errno);
    }
  } else {
    CreateMountpoint(target, true);
    const char* fstype = type.c_str();
    std::string data = options.data;
    if (type == "cgroup") {
      // cgroup v2 where the host has it; with v1 hierarchies the container
      // gets an empty read-only tmpfs (the agent keeps the cgroups).
      if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        fstype = "cgroup2";
        data.clear();
      } else {
        fstype = "tmpfs";
        data = "mode=755";
        options.flags |= MS_RDONLY;
      }
    }
    const char* source = mount.source.empty() ? fstype : mount.source.c_str();
    if (::mount(source, target.c_str(), fstype, options.flags & ~MS_REMOUNT,
                data.empty() ? nullptr : data.c_str()) != 0) {
      int error = errno;
      // devpts without newinstance support, or read-only sysfs in some
      // environments: report precisely which mount failed.
      Fail(describe + " (type " + fstype + (data.empty() ? "" : ", options " + data) + ")", error);
    }
  }
  for (unsigned long propagation : options.propagation)
    if (::mount(nullptr, target.c_str(), nullptr, propagation, nullptr) != 0) Fail(describe + " (propagation)", errno);
}

void PopulateDev(const std::string& rootfs, const std::vector<OciDevice>& devices, bool default_nodes) {
  std::string dev = ResolveInRoot(rootfs, "/dev");
  struct Node {
    const char* name;
    unsigned major;
    unsigned minor;
  };
  std::vector<OciDevice> all;
  if (default_nodes) {
    for (const Node& node : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7},
                             Node{"random", 1, 8}, Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
      OciDevice device;
      device.path = std::string("/dev/") + node.name;
      device.type = 'c';
      device.major = node.major;
      device.minor = node.minor;
      device.file_mode = 0666;
      all.push_back(device);
    }
  }
  all.insert(all.end(), devices.begin(), devices.end());
  for (const auto& device : all) {
    std::string path = ResolveInRoot(rootfs, device.path);
    auto slash = path.rfind('/');
    MakeDirectories(path.substr(0, slash), 0755);
    mode_t type = device.type == 'b' ? S_IFBLK : device.type == 'p' ? S_IFIFO : S_IFCHR;
    unlink(path.c_str());
    if (mknod(path.c_str(), type | (device.file_mode & 07777),
              makedev(static_cast<unsigned>(device.major), static_cast<unsigned>(device.minor))) == 0) {
      if (chmod(path.c_str(), device.file_mode & 07777) != 0) Fail("chmod " + device.path, errno);
      if (chown(path.c_str(), device.uid, device.gid) != 0) Fail("chown " + device.path, errno);
      continue;
    }
    if (errno != EPERM) Fail("mknod " + device.path, errno);
    // No CAP_MKNOD (or a nodev mount): bind the host's node instead.
    CreateMountpoint(path, false);
    if (::mount(device.path.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      Fail("bind mount " + device.path, errno);
  }
  if (!default_nodes) return;
  struct Link {
    const char* name;
    const char* target;
  };
  for (const Link& link : {Link{"fd", "/proc/self/fd"}, Link{"stdin", "/proc/self/fd/0"},
                           Link{"stdout", "/proc/self/fd/1"}, Link{"stderr", "/proc/self/fd/2"},
                           Link{"ptmx", "pts/ptmx"}, Link{"core", "/proc/kcore"}}) {
    std::string path = dev + "/" + link.name;
    if (symlink(link.target, path.c_str()) != 0 && errno != EEXIST) Fail("symlink /dev/" + std::string(link.name), errno);
  }
}

// For a root that pivot_root cannot leave (the initramfs of a utility VM):
// drop every mount outside the rootfs from this private namespace, so nothing
// of the VM (its /dev, /proc, the agent's channel, the sandbox share with the
// other containers' files) stays in it, then move the rootfs onto "/" and
// chroot into it, as runc does without pivot_root.
void MoveRoot(const std::string& given_rootfs) {
  // The rootfs sits inside the share (/run/share/<id>/rootfs), which must go
  // too: first move the rootfs (with its submounts: the container's volumes)
  // to a directory of the initramfs itself, so that no mount but "/" is its
  // ancestor any more. The directory is shared by all containers of the VM
  // (one initramfs) but each mounts on it in its own namespace.
  constexpr const char* kHolder = "/.container-root";
  if (mkdir(kHolder, 0700) != 0 && errno != EEXIST) Fail(std::string("mkdir ") + kHolder, errno);
  if (::mount(given_rootfs.c_str(), kHolder, nullptr, MS_MOVE, nullptr) != 0)
    Fail("move rootfs " + given_rootfs + " to " + kHolder, errno);
  const std::string rootfs = kHolder;
  std::vector<std::string> others;
  {
    const auto mountinfo = ReadProcText("/proc/self/mountinfo", 16 << 20);
    if (!mountinfo) Fail("read /proc/self/mountinfo", errno);
    for (auto& point : MountPointsOfMountInfo(*mountinfo)) {
      if (point == "/" || point == rootfs || point.starts_with(rootfs + "/")) continue;
      others.push_back(std::move(point));
    }
  }
  // Deepest first.
  std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& point : others) umount2(point.c_str(), MNT_DETACH);
  if (chdir(rootfs.c_str()) != 0) Fail("chdir " + rootfs, errno);
  if (::mount(rootfs.c_str(), "/", nullptr, MS_MOVE, nullptr) != 0) Fail("move rootfs " + rootfs + " to /", errno);
  if (chroot(".") != 0) Fail("chroot " + rootfs, errno);
  if (chdir("/") != 0) Fail("chdir /", errno);
}

void PivotRoot(const std::string& rootfs) {
  int old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (old_root < 0) Fail("open /", errno);
  int new_root = open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (new_root < 0) {
    int error = errno;
    close(old_root);
    Fail("open rootfs " + rootfs, error);
  }
  auto cleanup = [&] {
    close(old_root);
    close(new_root);
  };
  if (fchdir(new_root) != 0) {
    int error = errno;
    cleanup();
    Fail("chdir " + rootfs, error);
  }
  if (syscall(SYS_pivot_root, ".", ".") != 0) {
    int error = errno;
    cleanup();
    // The UVM's root is the initramfs, which pivot_root refuses (EINVAL).
    if (error == EINVAL) return MoveRoot(rootfs);
    Fail("pivot_root " + rootfs, error);
  }
  // The old root is now mounted on top of the new one at "/"; detach it
  // without propagating the unmount anywhere.
  if (fchdir(old_root) != 0 || ::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0 ||
      umount2(".", MNT_DETACH) != 0) {
    int error = errno;
    cleanup();
    Fail("detach the old root", error);
  }
  cleanup();
  if (chdir("/") != 0) Fail("chdir /", errno);
}

void MakeRootReadonly() {
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | ExistingMountFlags("/");
  if (::mount(nullptr, "/", nullptr, flags, nullptr) != 0) Fail("remount / read-only", errno);
}

void MaskPath(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    Fail("mask " + path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    if (::mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY, "size=0k") != 0) Fail("mask " + path, errno);
  } else if (::mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    Fail("mask " + path, errno);
  }
}

void ReadonlyPath(const std::string& path) {
  if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    if (errno == ENOENT) return;
    Fail("read-only bind " + path, errno);
  }
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | ExistingMountFlags(path);
  if (::mount(nullptr, path.c_str(), nullptr, flags, nullptr) != 0) Fail("remount read-only " + path, errno);
}

}  // namespace uvmshim::agent
