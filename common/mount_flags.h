// The per-mount flags of the filesystem at `path` (nosuid, nodev, noexec,
// atime modes) as MS_* bits: what a bind remount must keep, since the kernel
// refuses to clear flags locked by a less privileged mount namespace. 0 when
// statvfs fails. POSIX only; used by the agent and the host's share.
#pragma once

#include <string>

namespace uvmshim {

unsigned long MountFlagsOf(const std::string& path);

}  // namespace uvmshim
