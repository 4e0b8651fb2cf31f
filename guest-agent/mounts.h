// Filesystem setup of a container, run by the `__init` helper inside the new
// mount namespace (single-threaded, so ordinary C++ is fine here). Every
// function throws std::runtime_error naming the operation, the path and the
// errno text.
#pragma once

#include <string>
#include <vector>

#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {

struct MountOptions {
  unsigned long flags = 0;              // MS_RDONLY, MS_NOSUID, ...
  std::vector<unsigned long> propagation;  // MS_PRIVATE|MS_REC, ...
  bool bind = false;
  bool recursive_bind = false;
  std::string data;                     // the rest, comma-separated (mode=755,...)
};

MountOptions ParseMountOptions(const std::vector<std::string>& options);

// `path` (absolute, inside the container) resolved under `root` the way the
// container would see it: symlinks in existing components are followed but
// never leave `root`. Missing components are appended as they are.
std::string ResolveInRoot(const std::string& root, const std::string& path);

// Mounts one spec mount at its destination under `rootfs` (before pivot_root).
void MountInRootfs(const std::string& rootfs, const OciMount& mount);

// The minimal /dev: null zero full random urandom tty (mknod, or bind mounts
// of the host's nodes when mknod is not allowed), the /dev/fd, stdio and
// ptmx symlinks, plus the spec's extra devices.
void PopulateDev(const std::string& rootfs, const std::vector<OciDevice>& devices, bool default_nodes);

// Makes `rootfs` the root (pivot_root(".", ".") and a lazy unmount of the old
// root, which leaves no directory behind).
void PivotRoot(const std::string& rootfs);

void MakeRootReadonly();
void MaskPath(const std::string& path);      // after pivot_root
void ReadonlyPath(const std::string& path);  // after pivot_root

// mkdir -p with mode for missing components.
void MakeDirectories(const std::string& path, unsigned mode);

}  // namespace uvmshim::agent
