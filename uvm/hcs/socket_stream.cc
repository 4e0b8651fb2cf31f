#include "uvm/hcs/socket_stream.h"

#include <algorithm>
#include <cstring>
#include <system_error>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#endif

namespace uvmshim::uvm::hcs::net {
namespace {

// How often blocked reads/writes look at the abort flag.
constexpr std::chrono::milliseconds kAbortTick{100};

#ifdef _WIN32
SOCKET AsSocket(NativeSocket s) { return static_cast<SOCKET>(s); }
int LastError() { return WSAGetLastError(); }
bool WouldBlock(int error) { return error == WSAEWOULDBLOCK; }
bool ConnectInProgress(int error) { return error == WSAEWOULDBLOCK || error == WSAEINPROGRESS; }

std::string ErrorText(int error) {
  char buf[512] = {};
  DWORD len = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                             static_cast<DWORD>(error), 0, buf, sizeof buf, nullptr);
  std::string text(buf, len);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == '.')) {
    text.pop_back();
  }
  if (text.empty()) {
    // Some systems (wine) have no message table for Winsock codes.
    switch (error) {
      case WSAEAFNOSUPPORT: text = "address family not supported"; break;
      case WSAECONNREFUSED: text = "connection refused"; break;
      case WSAETIMEDOUT: text = "connection timed out"; break;
      case WSAENETUNREACH: text = "network unreachable"; break;
      case WSAEHOSTUNREACH: text = "host unreachable"; break;
      case WSAECONNRESET: text = "connection reset by peer"; break;
      case WSAEADDRINUSE: text = "address already in use"; break;
      default: text = "Winsock error"; break;
    }
  }
  return text + " (WSA " + std::to_string(error) + ")";
}

void SetNonBlocking(NativeSocket s) {
  u_long on = 1;
  if (ioctlsocket(AsSocket(s), FIONBIO, &on) != 0) {
    throw SocketError("ioctlsocket(FIONBIO): " + LastSocketErrorText());
  }
}

// Returns true when ready, false on timeout.
bool WaitSocket(NativeSocket s, bool for_write, std::chrono::milliseconds timeout) {
  fd_set ready;
  fd_set failed;
  FD_ZERO(&ready);
  FD_ZERO(&failed);
  FD_SET(AsSocket(s), &ready);
  FD_SET(AsSocket(s), &failed);  // a failed non-blocking connect shows up here
  timeval tv{};
  tv.tv_sec = static_cast<long>(timeout.count() / 1000);
  tv.tv_usec = static_cast<long>((timeout.count() % 1000) * 1000);
  int rc = select(0, for_write ? nullptr : &ready, for_write ? &ready : nullptr, &failed, &tv);
  if (rc == SOCKET_ERROR) throw SocketError("select: " + LastSocketErrorText());
  return rc > 0;
}
#else
int LastError() { return errno; }
bool WouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK; }
bool ConnectInProgress(int error) { return error == EINPROGRESS; }
std::string ErrorText(int error) {
  return std::system_category().message(error) + " (errno " + std::to_string(error) + ")";
}

void SetNonBlocking(NativeSocket s) {
  int flags = fcntl(s, F_GETFL);
  if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw SocketError("fcntl(O_NONBLOCK): " + LastSocketErrorText());
  }
}

bool WaitSocket(NativeSocket s, bool for_write, std::chrono::milliseconds timeout) {
  pollfd pfd{};
  pfd.fd = s;
  pfd.events = for_write ? POLLOUT : POLLIN;
  for (;;) {
    int rc = poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(timeout.count(), 1 << 30)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw SocketError("poll: " + LastSocketErrorText());
    return rc > 0;
  }
}
#endif

NativeSocket NewSocket(int family, int type, int protocol, std::string_view what) {
#ifdef _WIN32
  SOCKET s = WSASocketW(family, type, protocol, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) {
    throw SocketError(std::string(what) + ": socket(): " + LastSocketErrorText());
  }
  return static_cast<NativeSocket>(s);
#else
  int s = ::socket(family, type | SOCK_CLOEXEC, protocol);
  if (s < 0) throw SocketError(std::string(what) + ": socket(): " + LastSocketErrorText());
  return s;
#endif
}

void SetTcpNoDelay(NativeSocket s) {
  int on = 1;
#ifdef _WIN32
  setsockopt(AsSocket(s), IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&on), sizeof on);
#else
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
#endif
}

}  // namespace

// ---- SocketRuntime / Socket ----

SocketRuntime::SocketRuntime() {
#ifdef _WIN32
  WSADATA data;
  int rc = WSAStartup(MAKEWORD(2, 2), &data);
  if (rc != 0) throw SocketError("WSAStartup: " + ErrorText(rc));
#endif
}

SocketRuntime::~SocketRuntime() {
#ifdef _WIN32
  WSACleanup();
#endif
}

NativeSocket Socket::InvalidHandle() {
#ifdef _WIN32
  return static_cast<NativeSocket>(INVALID_SOCKET);
#else
  return -1;
#endif
}

bool Socket::valid() const { return handle_ != InvalidHandle(); }

NativeSocket Socket::Release() {
  NativeSocket handle = handle_;
  handle_ = InvalidHandle();
  return handle;
}

void Socket::Close() {
  if (!valid()) return;
#ifdef _WIN32
  closesocket(AsSocket(handle_));
#else
  ::close(handle_);
#endif
  handle_ = InvalidHandle();
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    Close();
    handle_ = other.Release();
  }
  return *this;
}

std::string LastSocketErrorText() { return ErrorText(LastError()); }

// ---- connect ----

Socket ConnectWithTimeout(int family, int type, int protocol, const void* address,
                          std::size_t address_len, std::chrono::milliseconds timeout,
                          std::string_view what) {
  SocketRuntime runtime;
  Socket socket(NewSocket(family, type, protocol, what));
  SetNonBlocking(socket.native());
#ifdef _WIN32
  int rc = ::connect(AsSocket(socket.native()), static_cast<const sockaddr*>(address),
                     static_cast<int>(address_len));
#else
  int rc;
  do {
    rc = ::connect(socket.native(), static_cast<const sockaddr*>(address),
                   static_cast<socklen_t>(address_len));
  } while (rc < 0 && errno == EINTR);
#endif
  if (rc == 0) return socket;
  int error = LastError();
  if (!ConnectInProgress(error)) {
    throw SocketError(std::string(what) + ": connect: " + ErrorText(error));
  }
  if (!WaitSocket(socket.native(), /*for_write=*/true, timeout)) {
    throw SocketError(std::string(what) + ": connect timed out after " +
                      std::to_string(timeout.count()) + " ms");
  }
  int so_error = 0;
#ifdef _WIN32
  int len = sizeof so_error;
  rc = getsockopt(AsSocket(socket.native()), SOL_SOCKET, SO_ERROR,
                  reinterpret_cast<char*>(&so_error), &len);
#else
  socklen_t len = sizeof so_error;
  rc = getsockopt(socket.native(), SOL_SOCKET, SO_ERROR, &so_error, &len);
#endif
  if (rc != 0) {
    throw SocketError(std::string(what) + ": getsockopt(SO_ERROR): " + LastSocketErrorText());
  }
  if (so_error != 0) {
    throw SocketError(std::string(what) + ": connect: " + ErrorText(so_error));
  }
  return socket;
}

Socket ConnectTcpLoopback(std::uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Socket socket = ConnectWithTimeout(AF_INET, SOCK_STREAM, IPPROTO_TCP, &addr, sizeof addr,
                                     timeout, "connect to 127.0.0.1:" + std::to_string(port));
  SetTcpNoDelay(socket.native());
  return socket;
}

// ---- SocketStream ----

SocketStream::SocketStream(Socket socket) : socket_(std::move(socket)) {
  SetNonBlocking(socket_.native());
}

bool SocketStream::WaitReady(bool for_write) {
  while (!aborted_.load()) {
    if (WaitSocket(socket_.native(), for_write, kAbortTick)) return !aborted_.load();
  }
  return false;
}

std::size_t SocketStream::Read(std::span<char> buf) {
  const int len = static_cast<int>(std::min<std::size_t>(buf.size(), 1 << 30));
  for (;;) {
    if (aborted_.load()) throw SocketError("socket read: stream aborted");
#ifdef _WIN32
    int n = ::recv(AsSocket(socket_.native()), buf.data(), len, 0);
#else
    ssize_t n = ::recv(socket_.native(), buf.data(), static_cast<std::size_t>(len), 0);
#endif
    if (n >= 0) return static_cast<std::size_t>(n);
    int error = LastError();
#ifndef _WIN32
    if (error == EINTR) continue;
#endif
    if (!WouldBlock(error)) throw SocketError("socket read: " + ErrorText(error));
    if (!WaitReady(/*for_write=*/false)) throw SocketError("socket read: stream aborted");
  }
}

void SocketStream::WriteAll(std::span<const char> data) {
  while (!data.empty()) {
    if (aborted_.load()) throw SocketError("socket write: stream aborted");
    const int len = static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30));
#ifdef _WIN32
    int n = ::send(AsSocket(socket_.native()), data.data(), len, 0);
#else
    ssize_t n = ::send(socket_.native(), data.data(), static_cast<std::size_t>(len), MSG_NOSIGNAL);
#endif
    if (n >= 0) {
      data = data.subspan(static_cast<std::size_t>(n));
      continue;
    }
    int error = LastError();
#ifndef _WIN32
    if (error == EINTR) continue;
#endif
    if (!WouldBlock(error)) throw SocketError("socket write: " + ErrorText(error));
    if (!WaitReady(/*for_write=*/true)) throw SocketError("socket write: stream aborted");
  }
}

void SocketStream::ShutdownWrite() {
  // Best effort: the peer may already be gone, which the reader will notice.
#ifdef _WIN32
  ::shutdown(AsSocket(socket_.native()), SD_SEND);
#else
  ::shutdown(socket_.native(), SHUT_WR);
#endif
}

void SocketStream::Abort() {
  aborted_.store(true);
  // Wakes a waiter at once where the OS supports it (Linux); the tick in
  // WaitReady covers the rest.
#ifdef _WIN32
  ::shutdown(AsSocket(socket_.native()), SD_BOTH);
#else
  ::shutdown(socket_.native(), SHUT_RDWR);
#endif
}

// ---- TcpLoopbackListener ----

TcpLoopbackListener::TcpLoopbackListener(std::uint16_t port)
    : socket_(NewSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, "loopback listener")) {
  const std::string what = "loopback listener on 127.0.0.1:" + std::to_string(port);
#ifdef _WIN32
  // Nobody else may bind the same port while we hold it.
  BOOL exclusive = TRUE;
  setsockopt(AsSocket(socket_.native()), SOL_SOCKET, SO_EXCLUSIVEADDRUSE,
             reinterpret_cast<const char*>(&exclusive), sizeof exclusive);
#endif
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
#ifdef _WIN32
  if (::bind(AsSocket(socket_.native()), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(AsSocket(socket_.native()), SOMAXCONN) != 0) {
    throw SocketError(what + ": " + LastSocketErrorText());
  }
  int len = sizeof addr;
  if (getsockname(AsSocket(socket_.native()), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SocketError(what + ": getsockname: " + LastSocketErrorText());
  }
#else
  if (::bind(socket_.native(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(socket_.native(), SOMAXCONN) != 0) {
    throw SocketError(what + ": " + LastSocketErrorText());
  }
  socklen_t len = sizeof addr;
  if (getsockname(socket_.native(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw SocketError(what + ": getsockname: " + LastSocketErrorText());
  }
#endif
  port_ = ntohs(addr.sin_port);
  SetNonBlocking(socket_.native());
}

std::unique_ptr<ByteStream> TcpLoopbackListener::Accept(std::chrono::milliseconds timeout,
                                                        PeerAddress* peer) {
  if (!WaitSocket(socket_.native(), /*for_write=*/false, timeout)) return nullptr;
  sockaddr_in addr{};
#ifdef _WIN32
  int len = sizeof addr;
  SOCKET s = ::accept(AsSocket(socket_.native()), reinterpret_cast<sockaddr*>(&addr), &len);
  if (s == INVALID_SOCKET) {
    int error = LastError();
    if (WouldBlock(error) || error == WSAECONNRESET) return nullptr;
    throw SocketError("accept on 127.0.0.1:" + std::to_string(port_) + ": " + ErrorText(error));
  }
  Socket accepted(static_cast<NativeSocket>(s));
#else
  socklen_t len = sizeof addr;
  int s = ::accept4(socket_.native(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
  if (s < 0) {
    int error = LastError();
    if (WouldBlock(error) || error == EINTR || error == ECONNABORTED) return nullptr;
    throw SocketError("accept on 127.0.0.1:" + std::to_string(port_) + ": " + ErrorText(error));
  }
  Socket accepted(s);
#endif
  SetTcpNoDelay(accepted.native());
  if (peer != nullptr) {
    peer->ipv4 = ntohl(addr.sin_addr.s_addr);
    peer->port = ntohs(addr.sin_port);
    peer->local_port = port_;
  }
  return std::make_unique<SocketStream>(std::move(accepted));
}

std::string TcpLoopbackListener::Target() const {
  return "ipv4:127.0.0.1:" + std::to_string(port_);
}

}  // namespace uvmshim::uvm::hcs::net
