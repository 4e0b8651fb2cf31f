#include "uvm/hcs/stream_relay.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace uvmshim::uvm::hcs::net {

StreamRelay::StreamRelay(std::unique_ptr<StreamListener> listener, StreamDialer dialer,
                         RelayOptions options)
    : listener_(std::move(listener)),
      dialer_(std::move(dialer)),
      options_(std::move(options)),
      target_(listener_->Target()) {
  if (options_.buffer_size == 0) options_.buffer_size = 64 * 1024;
}

StreamRelay::~StreamRelay() { Stop(); }

void StreamRelay::Start() {
  if (accept_thread_.joinable() || stopping_.load()) return;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

void StreamRelay::Stop() {
  stopping_.store(true);
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard lock(mutex_);
    for (auto& connection : connections_) {
      connection->downstream->Abort();
      if (connection->upstream) connection->upstream->Abort();
    }
    connections.swap(connections_);
  }
  for (auto& connection : connections) {
    if (connection->thread.joinable()) connection->thread.join();
  }
}

RelayStats StreamRelay::stats() const {
  RelayStats stats;
  stats.accepted = accepted_.load();
  stats.refused = refused_.load();
  stats.dial_failures = dial_failures_.load();
  stats.bytes_to_upstream = bytes_up_.load();
  stats.bytes_to_downstream = bytes_down_.load();
  std::lock_guard lock(mutex_);
  for (const auto& connection : connections_) {
    if (!connection->done.load()) ++stats.active;
  }
  return stats;
}

void StreamRelay::ReapFinished() {
  std::vector<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& connection : finished) connection->thread.join();
}

void StreamRelay::AcceptLoop() {
  while (!stopping_.load()) {
    ReapFinished();
    PeerAddress peer;
    std::unique_ptr<ByteStream> client;
    try {
      client = listener_->Accept(options_.accept_tick, &peer);
    } catch (const std::exception& e) {
      spdlog::warn("relay {}: accept failed: {}", target_, e.what());
      std::this_thread::sleep_for(options_.accept_tick);  // don't spin on a persistent error
      continue;
    }
    if (!client) continue;
    if (options_.peer_filter && !options_.peer_filter(peer)) {
      ++refused_;
      spdlog::warn("relay {}: refused connection from port {} (peer filter)", target_, peer.port);
      continue;  // destroying `client` closes it
    }
    std::lock_guard lock(mutex_);
    if (connections_.size() >= options_.max_connections) {
      ++refused_;
      spdlog::warn("relay {}: refused connection: {} connections already open", target_,
                   connections_.size());
      continue;
    }
    ++accepted_;
    auto connection = std::make_unique<Connection>();
    connection->downstream = std::move(client);
    Connection* raw = connection.get();
    connections_.push_back(std::move(connection));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void StreamRelay::Serve(Connection* connection) {
  std::unique_ptr<ByteStream> upstream;
  try {
    upstream = dialer_(options_.dial_timeout);
  } catch (const std::exception& e) {
    ++dial_failures_;
    spdlog::warn("relay {}: upstream dial failed: {}", target_, e.what());
  }
  if (!upstream) {
    connection->done.store(true);
    return;
  }
  ByteStream* up = upstream.get();
  {
    std::lock_guard lock(mutex_);
    connection->upstream = std::move(upstream);
    // Stop() may have run while we were dialing.
    if (stopping_.load()) up->Abort();
  }
  ByteStream& down = *connection->downstream;
  std::thread to_downstream([this, up, &down] { Pump(*up, down, bytes_down_); });
  Pump(down, *up, bytes_up_);
  to_downstream.join();
  connection->done.store(true);
}

void StreamRelay::Pump(ByteStream& from, ByteStream& to, std::atomic<std::uint64_t>& counter) {
  std::vector<char> buffer(options_.buffer_size);
  try {
    for (;;) {
      std::size_t n = from.Read(buffer);
      if (n == 0) {
        to.ShutdownWrite();  // pass the half-close on; the other direction goes on
        return;
      }
      to.WriteAll(std::span<const char>(buffer.data(), n));
      counter += n;
    }
  } catch (const std::exception& e) {
    if (!stopping_.load()) spdlog::debug("relay {}: connection ended: {}", target_, e.what());
    // One direction failed: end both so the other pump stops too.
    from.Abort();
    to.Abort();
  }
}

}  // namespace uvmshim::uvm::hcs::net
