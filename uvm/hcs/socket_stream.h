// Portable stream sockets (POSIX on Linux, Winsock on Windows) behind small
// interfaces, so the relay logic above them is the same code on both and is
// tested on Linux with real TCP loopback sockets.
//
// Every socket is non-blocking underneath; reads and writes wait with
// select() in short ticks so that Abort() from another thread ends them
// promptly on both platforms (Winsock does not reliably wake a blocked
// recv() on shutdown()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs::net {

#ifdef _WIN32
using NativeSocket = std::uintptr_t;  // SOCKET
#else
using NativeSocket = int;
#endif

// Thrown for socket failures; what() names the operation and the OS error.
class SocketError : public VmError {
 public:
  using VmError::VmError;
};

// Keeps Winsock initialised (WSAStartup/WSACleanup are reference counted by
// Windows, so every owner may hold one). No-op on POSIX. Whoever holds a bare
// Socket must hold one too: the last WSACleanup closes every socket.
class SocketRuntime {
 public:
  SocketRuntime();
  ~SocketRuntime();
  SocketRuntime(const SocketRuntime&) = delete;
  SocketRuntime& operator=(const SocketRuntime&) = delete;
};

// Owns one socket; closes it once.
class Socket {
 public:
  Socket() = default;
  explicit Socket(NativeSocket handle) : handle_(handle) {}
  ~Socket() { Close(); }
  Socket(Socket&& other) noexcept : handle_(other.Release()) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool valid() const;
  NativeSocket native() const { return handle_; }
  NativeSocket Release();
  void Close();

 private:
  NativeSocket handle_ = InvalidHandle();
  static NativeSocket InvalidHandle();
};

// Text of the last socket error (errno / WSAGetLastError) with its number.
std::string LastSocketErrorText();

// Creates a socket(family, type, protocol) and connects it to `address`
// within `timeout` (non-blocking connect + select). Throws SocketError naming
// `what` (e.g. "hvsocket connect to VM x port 1024").
Socket ConnectWithTimeout(int family, int type, int protocol, const void* address,
                          std::size_t address_len, std::chrono::milliseconds timeout,
                          std::string_view what);

// Connects to 127.0.0.1:port.
Socket ConnectTcpLoopback(std::uint16_t port, std::chrono::milliseconds timeout);

// A bidirectional byte stream.
class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads up to buf.size() bytes; returns 0 at end of stream. Throws on error
  // and after Abort().
  virtual std::size_t Read(std::span<char> buf) = 0;
  // Writes everything or throws (also after Abort()).
  virtual void WriteAll(std::span<const char> data) = 0;
  // Sends end-of-stream to the peer; reading continues.
  virtual void ShutdownWrite() = 0;
  // Thread-safe: makes pending and future Read/WriteAll calls throw soon.
  virtual void Abort() = 0;
};

class SocketStream final : public ByteStream {
 public:
  explicit SocketStream(Socket socket);
  std::size_t Read(std::span<char> buf) override;
  void WriteAll(std::span<const char> data) override;
  void ShutdownWrite() override;
  void Abort() override;
  NativeSocket native() const { return socket_.native(); }

 private:
  // Waits until readable/writable or aborted; returns false when aborted.
  bool WaitReady(bool for_write);

  SocketRuntime runtime_;
  Socket socket_;
  std::atomic<bool> aborted_{false};
};

// Where an accepted connection came from (IPv4 loopback only here).
struct PeerAddress {
  std::uint32_t ipv4 = 0;       // host byte order
  std::uint16_t port = 0;       // the peer's port
  std::uint16_t local_port = 0; // our listening port
};

class StreamListener {
 public:
  virtual ~StreamListener() = default;
  // nullptr when nothing arrived within `timeout`; throws on error.
  virtual std::unique_ptr<ByteStream> Accept(std::chrono::milliseconds timeout,
                                             PeerAddress* peer) = 0;
  // "ipv4:127.0.0.1:PORT" (a gRPC target).
  virtual std::string Target() const = 0;
};

// Listens on 127.0.0.1 only (never on other interfaces).
class TcpLoopbackListener final : public StreamListener {
 public:
  // port 0 = an ephemeral port chosen by the OS.
  explicit TcpLoopbackListener(std::uint16_t port = 0);
  std::unique_ptr<ByteStream> Accept(std::chrono::milliseconds timeout,
                                     PeerAddress* peer) override;
  std::string Target() const override;
  std::uint16_t port() const { return port_; }

 private:
  SocketRuntime runtime_;
  Socket socket_;
  std::uint16_t port_ = 0;
};

}  // namespace uvmshim::uvm::hcs::net
