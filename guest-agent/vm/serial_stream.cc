#include "guest-agent/vm/serial_stream.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/serial_reset.h"

namespace uvmshim::agent::vm {

const char* ToString(ConnectionEndKind kind) {
  switch (kind) {
    case ConnectionEndKind::kNone: return "serving";
    case ConnectionEndKind::kHostReset: return "host reset";
    case ConnectionEndKind::kHostReconnected: return "host reconnected";
    case ConnectionEndKind::kHostDisconnected: return "host disconnected";
    case ConnectionEndKind::kAgentClosed: return "agent closed the connection";
    case ConnectionEndKind::kStopping: return "stopping";
    case ConnectionEndKind::kIoError: return "i/o error";
  }
  return "unknown";
}

void ByteQueue::Assign(const char* bytes, std::size_t size) {
  std::memcpy(data.data(), bytes, size);
  begin = 0;
  end = size;
}

ssize_t ByteQueue::FillFrom(int fd) {
  const ssize_t n = ::read(fd, data.data(), data.size());
  if (n > 0) {
    begin = 0;
    end = static_cast<std::size_t>(n);
  }
  return n;
}

bool ByteQueue::DrainTo(int fd) {
  const ssize_t n = ::write(fd, data.data() + begin, size());
  if (n > 0) {
    begin += static_cast<std::size_t>(n);
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EINTR);
}

ChunkAction HostStreamParser::Classify(const char* data, std::size_t size, ConnectionEndKind* why) {
  // A reset line starts a new host connection wherever the old one stood.
  if (serial::ParseResetLine(data, size)) {
    *why = ConnectionEndKind::kHostReset;
    return ChunkAction::kNewConnection;
  }
  const bool preface = StartsWithHttp2Preface(data, size);
  const bool new_host_possible = expect_new_host_;
  expect_new_host_ = false;
  if (!started_) {
    if (!preface) {
      dropped_ += size;
      return ChunkAction::kDrop;
    }
    started_ = true;
  } else if (preface && (frames_.AtFrameBoundary() || new_host_possible)) {
    *why = ConnectionEndKind::kHostReconnected;
    return ChunkAction::kNewConnection;
  }
  frames_.Consume(data, size);
  return ChunkAction::kForward;
}

void SerialConnection::Begin(std::vector<char> first) {
  if (auto nonce = serial::ParseResetLine(first.data(), first.size())) {
    first.erase(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(serial::kLineSize));
    const std::string ready = serial::ReadyLine(*nonce);
    to_host.Assign(ready.data(), ready.size());
  }
  if (!first.empty()) TakeChunk(first.data(), first.size());
}

void SerialConnection::TakeChunk(const char* data, std::size_t size) {
  ConnectionEndKind why = ConnectionEndKind::kNone;
  switch (parser.Classify(data, size, &why)) {
    case ChunkAction::kForward:
      to_guest.Assign(data, size);
      return;
    case ChunkAction::kDrop:
      return;
    case ChunkAction::kNewConnection:
      next_connection.assign(data, data + size);
      End(why);
      return;
  }
}

void SerialConnection::EndWithErrno(const char* what) {
  End(ConnectionEndKind::kIoError, std::string(what) + ": " + std::strerror(errno));
}

}  // namespace uvmshim::agent::vm

namespace uvmshim::agent::vm {

void HostPresence::Away(Clock::time_point now) {
  if (away_since_) return;
  away_since_ = now;
  recheck_ms_ = 1;
}

void HostPresence::DataArrived(Clock::time_point now) {
  if (away_since_) away_since_ = now;
}

int HostPresence::NextRecheckMs() {
  const int ms = recheck_ms_;
  recheck_ms_ = std::min(recheck_ms_ * 2, 50);
  return ms;
}

// POLLHUP means "no host connected right now" and comes with POLLIN: read()
// still returns what a host sent (the one that left, or a new one whose
// arrival is not reported yet), then 0 once nothing is left. Only a read of 0
// after the host was away for kGoneAfter ends the connection.
bool SerialConnection::ServePort(int port, short revents, std::vector<char>& chunk,
                                 HostPresence::Clock::time_point now) {
  if (revents & POLLERR) {
    End(ConnectionEndKind::kIoError, "port error");
    return true;
  }
  if (revents & POLLHUP) {
    if (!host.away()) parser.ExpectNewHost();
    host.Away(now);
  } else if (revents & (POLLIN | POLLOUT)) {
    if (host.away()) parser.ExpectNewHost();
    host.Present();
  }
  if ((revents & (POLLIN | POLLHUP)) && to_guest.empty()) {
    const ssize_t n = ::read(port, chunk.data(), chunk.size());
    if (n > 0) {
      host.DataArrived(now);
      TakeChunk(chunk.data(), static_cast<std::size_t>(n));
    } else if (n == 0) {
      if (host.Gone(now)) End(ConnectionEndKind::kHostDisconnected);
    } else if (errno != EAGAIN && errno != EINTR) {
      EndWithErrno("read port");
    }
    if (end.ended()) return true;
  }
  if ((revents & POLLOUT) && !to_host.empty() && !to_host.DrainTo(port)) EndWithErrno("write port");
  return end.ended();
}

}  // namespace uvmshim::agent::vm
