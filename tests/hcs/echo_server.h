// A TCP loopback echo server on real sockets: the stand-in for the guest
// agent's listener in relay and HcsVm tests (the agent itself is behind
// hvsocket, which cannot exist here).
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "uvm/hcs/socket_stream.h"

namespace uvmshim::uvm::hcs::testing {

class EchoServer {
 public:
  EchoServer() : listener_(std::make_unique<net::TcpLoopbackListener>(0)) {
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~EchoServer() { Stop(); }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  std::uint16_t port() const { return listener_->port(); }
  int connections() const { return connections_.load(); }

  // Stops accepting and ends every echo connection.
  void Stop() {
    stopping_ = true;
    if (accept_thread_.joinable()) accept_thread_.join();
    std::lock_guard lock(mutex_);
    for (auto& session : sessions_) session->stream->Abort();
    for (auto& session : sessions_) {
      if (session->thread.joinable()) session->thread.join();
    }
    sessions_.clear();
  }

 private:
  struct Session {
    std::unique_ptr<net::ByteStream> stream;
    std::thread thread;
  };

  void AcceptLoop() {
    while (!stopping_) {
      auto stream = listener_->Accept(std::chrono::milliseconds(20), nullptr);
      if (!stream) continue;
      ++connections_;
      std::lock_guard lock(mutex_);
      auto session = std::make_unique<Session>();
      session->stream = std::move(stream);
      net::ByteStream* raw = session->stream.get();
      session->thread = std::thread([raw] { Echo(*raw); });
      sessions_.push_back(std::move(session));
    }
  }

  static void Echo(net::ByteStream& stream) {
    std::vector<char> buf(16 * 1024);
    try {
      for (;;) {
        std::size_t n = stream.Read(buf);
        if (n == 0) {
          stream.ShutdownWrite();
          return;
        }
        stream.WriteAll(std::span<const char>(buf.data(), n));
      }
    } catch (const std::exception&) {
      // aborted or reset: the session ends
    }
  }

  net::SocketRuntime runtime_;
  std::unique_ptr<net::TcpLoopbackListener> listener_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::mutex mutex_;
  std::list<std::unique_ptr<Session>> sessions_;
};

// Reads until `n` bytes arrived or the stream ended.
inline std::string ReadExactly(net::ByteStream& stream, std::size_t n) {
  std::string out;
  std::vector<char> buf(16 * 1024);
  while (out.size() < n) {
    std::size_t got = stream.Read(std::span<char>(buf.data(), std::min(buf.size(), n - out.size())));
    if (got == 0) break;
    out.append(buf.data(), got);
  }
  return out;
}

// Reads until end of stream.
inline std::string ReadToEnd(net::ByteStream& stream) {
  std::string out;
  std::vector<char> buf(16 * 1024);
  for (;;) {
    std::size_t got = stream.Read(buf);
    if (got == 0) return out;
    out.append(buf.data(), got);
  }
}

}  // namespace uvmshim::uvm::hcs::testing
