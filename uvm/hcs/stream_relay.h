// A relay from a local listener to an upstream the relay dials per
// connection. On Windows the shim runs one per UVM: gRPC C++ there cannot
// adopt a Hyper-V socket handle, so the gRPC channel targets
// ipv4:127.0.0.1:PORT and every accepted TCP connection is pumped to a new
// hvsocket connection to the guest agent's vsock port.
//
// Written against ByteStream/StreamListener so the same code runs (and is
// tested) on Linux over TCP loopback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "uvm/hcs/socket_stream.h"

namespace uvmshim::uvm::hcs::net {

// Opens the upstream for one accepted connection; throws on failure.
using StreamDialer = std::function<std::unique_ptr<ByteStream>(std::chrono::milliseconds timeout)>;
// Returns false to refuse an accepted connection before anything is dialed.
using PeerFilter = std::function<bool(const PeerAddress& peer)>;

struct RelayOptions {
  std::chrono::milliseconds dial_timeout{std::chrono::seconds(2)};
  std::size_t buffer_size = 64 * 1024;
  std::size_t max_connections = 64;  // further connections are refused
  std::chrono::milliseconds accept_tick{100};  // how often the accept loop checks Stop()
  PeerFilter peer_filter;            // empty = accept every loopback peer
};

struct RelayStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;         // by the peer filter or max_connections
  std::uint64_t dial_failures = 0;
  std::uint64_t bytes_to_upstream = 0;
  std::uint64_t bytes_to_downstream = 0;
  std::size_t active = 0;
};

class StreamRelay {
 public:
  StreamRelay(std::unique_ptr<StreamListener> listener, StreamDialer dialer,
              RelayOptions options = {});
  ~StreamRelay();  // Stop()
  StreamRelay(const StreamRelay&) = delete;
  StreamRelay& operator=(const StreamRelay&) = delete;

  // Starts accepting (one thread, plus two per live connection).
  void Start();
  // Stops accepting, aborts every live connection and joins all threads.
  // Idempotent.
  void Stop();
  // The listener's gRPC target, e.g. "ipv4:127.0.0.1:50123".
  std::string Target() const { return target_; }
  RelayStats stats() const;

 private:
  struct Connection {
    std::unique_ptr<ByteStream> downstream;  // the accepted client
    std::unique_ptr<ByteStream> upstream;    // set once dialed (under mutex_)
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void Serve(Connection* connection);
  void Pump(ByteStream& from, ByteStream& to, std::atomic<std::uint64_t>& counter);
  void ReapFinished();

  std::unique_ptr<StreamListener> listener_;
  StreamDialer dialer_;
  RelayOptions options_;
  std::string target_;

  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  mutable std::mutex mutex_;
  std::list<std::unique_ptr<Connection>> connections_;  // guarded by mutex_
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> dial_failures_{0};
  std::atomic<std::uint64_t> bytes_up_{0};
  std::atomic<std::uint64_t> bytes_down_{0};
};

}  // namespace uvmshim::uvm::hcs::net
