#include "ttrpc/socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace uvmshim::ttrpc {
namespace {

std::system_error SysError(int err, const std::string& what) {
  return std::system_error(err, std::generic_category(), what);
}

// Fills `addr` for `path`; returns the address length to pass to bind/connect.
socklen_t MakeAddress(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  const bool abstract = !path.empty() && path[0] == '@';
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw SysError(ENAMETOOLONG, "unix socket path '" + path + "' is empty or longer than " +
                                     std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (abstract) {
    addr.sun_path[0] = '\0';
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  return static_cast<socklen_t>(sizeof addr);
}

}  // namespace

std::string SocketPathFromAddress(std::string_view address) {
  constexpr std::string_view kScheme = "unix://";
  if (address.substr(0, kScheme.size()) == kScheme) address.remove_prefix(kScheme.size());
  return std::string(address);
}

UniqueFd ListenUnix(const std::string& path, int backlog) {
  sockaddr_un addr;
  const socklen_t len = MakeAddress(path, addr);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw SysError(errno, "socket() for ttrpc listener " + path);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    throw SysError(errno, "bind ttrpc socket " + path);
  }
  // The peer credential check guards the short window before chmod.
  if (path[0] != '@' && ::chmod(path.c_str(), 0600) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    throw SysError(err, "chmod 0600 ttrpc socket " + path);
  }
  if (::listen(fd.get(), backlog) != 0) {
    const int err = errno;
    if (path[0] != '@') ::unlink(path.c_str());
    throw SysError(err, "listen on ttrpc socket " + path);
  }
  return fd;
}

UniqueFd ConnectUnix(std::string_view address) {
  const std::string path = SocketPathFromAddress(address);
  sockaddr_un addr;
  const socklen_t len = MakeAddress(path, addr);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw SysError(errno, "socket() to connect to " + path);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) throw SysError(errno, "connect to ttrpc socket " + path);
  return fd;
}

PeerCredentials GetPeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw SysError(errno, "getsockopt(SO_PEERCRED) on fd " + std::to_string(fd));
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

bool PeerAllowed(const PeerCredentials& peer, uid_t server_uid) {
  return peer.uid == server_uid || peer.uid == 0;
}

int SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

}  // namespace uvmshim::ttrpc
