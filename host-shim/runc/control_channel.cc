#include "runc/control_channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/fd_passing.h"

namespace uvmshim::runc {
namespace fs = std::filesystem;

using nlohmann::json;

namespace {

constexpr std::size_t kMaxMessage = 1 << 20;

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::runtime_error(fmt::format("{}: {}", what, std::strerror(errno)));
}

// sockaddr for <dir>/<name> reached through an O_PATH descriptor of dir.
struct ShortAddress {
  UniqueFd dir_fd;
  sockaddr_un address{};
  socklen_t length = 0;
};

ShortAddress AddressFor(const fs::path& dir, const std::string& name) {
  ShortAddress a;
  a.dir_fd = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!a.dir_fd) ThrowErrno(fmt::format("open {}", dir.string()));
  const std::string path = fmt::format("/proc/self/fd/{}/{}", a.dir_fd.get(), name);
  a.address.sun_family = AF_UNIX;
  std::memcpy(a.address.sun_path, path.c_str(), path.size() + 1);
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return a;
}

}  // namespace

UniqueFd ListenControl(const fs::path& dir) {
  auto a = AddressFor(dir, kControlSocketName);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) ThrowErrno("socket");
  ::unlink((dir / kControlSocketName).c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a.address), a.length) != 0)
    ThrowErrno(fmt::format("bind {}", (dir / kControlSocketName).string()));
  if (::listen(fd.get(), 16) != 0) ThrowErrno("listen");
  return fd;
}

UniqueFd ConnectControl(const fs::path& dir) {
  auto a = AddressFor(dir, kControlSocketName);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) ThrowErrno("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a.address), a.length) != 0) {
    if (errno == ECONNREFUSED || errno == ENOENT) throw std::runtime_error("container is not running");
    ThrowErrno(fmt::format("connect {}", (dir / kControlSocketName).string()));
  }
  return fd;
}

void SendMessage(int fd, const json& body, const std::vector<int>& fds) {
  const std::string text = body.dump();
  if (text.size() > kMaxMessage) throw std::runtime_error("control message too large");
  if (fds.size() > kMaxPassedFds) throw std::runtime_error("too many descriptors for one message");
  if (SendWithFds(fd, text.data(), text.size(), fds.data(), fds.size()) < 0) ThrowErrno("sending a control message");
}

std::optional<Message> ReceiveMessage(int fd) {
  std::string buffer(kMaxMessage, '\0');
  Received received = ReceiveWithFds(fd, buffer.data(), buffer.size());
  if (received.bytes < 0) ThrowErrno("receiving a control message");
  const ssize_t n = received.bytes;
  Message m;
  m.fds = std::move(received.fds);
  if (n == 0) return std::nullopt;
  if (received.truncated) throw std::runtime_error("control message truncated");
  m.body = json::parse(buffer.substr(0, static_cast<std::size_t>(n)), nullptr, false);
  if (m.body.is_discarded() || !m.body.is_object()) throw std::runtime_error("malformed control message");
  return m;
}

json Call(const fs::path& dir, const json& request, const std::vector<int>& fds) {
  auto fd = ConnectControl(dir);
  SendMessage(fd.get(), request, fds);
  auto answer = ReceiveMessage(fd.get());
  if (!answer) throw std::runtime_error("the container's monitor closed the connection");
  if (answer->body.contains("error")) throw std::runtime_error(answer->body["error"].get<std::string>());
  return answer->body;
}

void SendFdToSocketPath(const fs::path& socket_path, int fd) {
  auto a = AddressFor(socket_path.parent_path(), socket_path.filename().string());
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) ThrowErrno("socket");
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&a.address), a.length) != 0)
    ThrowErrno(fmt::format("connect --console-socket {}", socket_path.string()));
  // runc sends the pty's name as the payload; callers ignore it but expect data.
  const std::string name = "/dev/ptmx";
  if (SendWithFds(sock.get(), name.data(), name.size(), &fd, 1) < 0) ThrowErrno("sending the pty over --console-socket");
}

}  // namespace uvmshim::runc
