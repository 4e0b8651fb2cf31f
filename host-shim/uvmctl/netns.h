// Named network namespaces, as `ip netns add/delete` keep them: a new network
// namespace held alive by a bind mount of its nsfs file on <dir>/<name>, so
// that it outlives the process that made it and any process (a CNI plugin,
// the agent, `ip netns exec`) can open it by path.
#pragma once

#include <filesystem>
#include <string>

namespace uvmshim::uvmctl {

// Creates <dir>/<name> holding a new, empty network namespace (loopback
// only, down). `dir` becomes a shared mount point as `ip netns` makes
// /run/netns, so that removing a namespace reaches the mount namespaces that
// copied it. Throws std::runtime_error (nothing left behind) on failure,
// including when <dir>/<name> exists.
std::filesystem::path CreateNamedNetns(const std::filesystem::path& dir, const std::string& name);

// Detaches the bind mount and removes the file; a path that is already gone
// is fine. Throws std::runtime_error when the file stays.
void RemoveNamedNetns(const std::filesystem::path& path);

// The inode of the calling thread's network namespace (what names it in
// /proc/<pid>/ns/net: "net:[<inode>]").
unsigned long CurrentNetnsInode();

}  // namespace uvmshim::uvmctl
