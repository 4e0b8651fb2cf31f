// Where the host tools find each other and keep their state.
#pragma once

#include <filesystem>
#include <string>

namespace uvmshim::host {

// The running executable's directory (/proc/self/exe).
std::filesystem::path SelfDir();

// A sibling tool: $ENV_VAR if set, else <SelfDir>/<name>, else <name> on PATH.
// Throws std::runtime_error naming every place it looked.
std::filesystem::path FindTool(const std::string& name, const char* env_var);

// Runtime state root: $UVMSHIM_ROOT, else /run/uvmshim. One directory per
// sandbox below it holds its sockets, logs and state.json.
std::filesystem::path RuntimeRoot();

// Directory with vmlinuz and initrd.img: $UVMSHIM_IMAGES, else <SelfDir>/../images
// (the build tree), else /usr/local/share/uvmshim, else /usr/share/uvmshim.
std::filesystem::path ImagesDir();

// Sockets of a sandbox whose state dir is too long for sun_path (107 bytes)
// live in a short, hash-named directory below this one instead.
inline constexpr const char* kShortSocketRoot = "/run/uvmshim-sockets";
// The directory for the Unix sockets of a state dir: the dir itself when every
// socket path fits, else kShortSocketRoot/<hash of the dir>.
std::filesystem::path SocketDirFor(const std::filesystem::path& owner);
// The shim daemon's socket for a sandbox: <RuntimeRoot>/s/<hash>.sock, or
// below kShortSocketRoot when the root is long.
std::filesystem::path ShimSocketPath(const std::string& ns, const std::string& id);
// A fresh random id (12 hex digits).
std::string RandomId();

}  // namespace uvmshim::host
