#include "uvm/serial_connect.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <grpcpp/create_channel_posix.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

#include "common/serial_reset.h"
#include "common/unique_fd.h"

namespace uvmshim::uvm {
namespace {

using Clock = std::chrono::steady_clock;

std::string PathOf(const std::string& target) {
  for (const char* prefix : {"unix://", "unix:"})
    if (target.rfind(prefix, 0) == 0) return target.substr(std::strlen(prefix));
  throw std::runtime_error("serial channel " + target + ": not a unix: target");
}

std::string Nonce() {
  std::random_device random;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string nonce;
  for (std::size_t i = 0; i < serial::kNonceDigits; ++i) nonce += "0123456789abcdef"[digit(random)];
  return nonce;
}

[[noreturn]] void Fail(const std::string& target, const std::string& what) {
  throw std::runtime_error("serial channel " + target + ": " + what);
}

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

std::shared_ptr<grpc::Channel> ConnectSerialChannel(const std::string& target, std::chrono::milliseconds timeout,
                                                    const grpc::ChannelArguments& args) {
  const auto deadline = Clock::now() + timeout;
  const std::string path = PathOf(target);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) Fail(target, std::string("socket: ") + std::strerror(errno));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) Fail(target, "socket path too long");
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    Fail(target, std::string("connect: ") + std::strerror(errno));

  const std::string nonce = Nonce();
  const std::string reset = serial::ResetLine(nonce);
  if (::send(fd.get(), reset.data(), reset.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reset.size()))
    Fail(target, std::string("send reset: ") + std::strerror(errno));
  // Everything before READY is an earlier connection's tail: read byte by
  // byte so that nothing of the new connection is taken from gRPC.
  const std::string ready = serial::ReadyLine(nonce);
  std::string window;
  while (window != ready) {
    pollfd pfd{fd.get(), POLLIN, 0};
    const int n = ::poll(&pfd, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      Fail(target, "no answer to the reset handshake within " + std::to_string(timeout.count()) +
                       " ms (the guest agent is not serving the port, or another client holds it)");
    char c;
    const ssize_t got = ::read(fd.get(), &c, 1);
    if (got == 0) Fail(target, "closed by the VM during the reset handshake");
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      Fail(target, std::string("read: ") + std::strerror(errno));
    }
    window.push_back(c);
    if (window.size() > ready.size()) window.erase(0, 1);
  }
  // gRPC drives an adopted fd with non-blocking socket calls.
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    Fail(target, std::string("fcntl: ") + std::strerror(errno));
  return grpc::CreateCustomInsecureChannelFromFd(target, fd.release(), args);
}

}  // namespace uvmshim::uvm
