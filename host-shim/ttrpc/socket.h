// Unix socket plumbing for ttrpc: address parsing, listen/connect, peer
// credentials. Every fd is created close-on-exec.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace uvmshim::ttrpc {

// "unix:///run/x.sock" -> "/run/x.sock"; a plain path passes through.
// "@name" (or "unix://@name") denotes an abstract socket.
std::string SocketPathFromAddress(std::string_view address);

// Binds and listens on `path` (which must not exist) and restricts the socket
// file to mode 0600. Throws std::system_error naming the path.
UniqueFd ListenUnix(const std::string& path, int backlog = 64);

// Connects to `address` (see SocketPathFromAddress). Throws std::system_error.
UniqueFd ConnectUnix(std::string_view address);

struct PeerCredentials {
  pid_t pid = -1;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

// SO_PEERCRED of a connected Unix socket. Throws std::system_error.
PeerCredentials GetPeerCredentials(int fd);

// The rule containerd applies: the peer runs as the same uid as the server, or as root.
bool PeerAllowed(const PeerCredentials& peer, uid_t server_uid);

// Writes all of `bytes` (send with MSG_NOSIGNAL, retrying on EINTR and short
// writes). Returns 0 or the errno that stopped it.
int SendAll(int fd, std::string_view bytes);

}  // namespace uvmshim::ttrpc
