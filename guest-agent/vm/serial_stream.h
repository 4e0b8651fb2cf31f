// The serial bridge's pieces below the listener (guest-agent/vm/channels.h),
// kept apart as Firecracker keeps its vsock device's: the wire format of the
// host's byte stream (HostStreamParser: which read starts a new host
// connection, which bytes gRPC gets), the byte buffers between the port and
// gRPC's socket (ByteQueue), and why a connection ended (ConnectionEnd).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "guest-agent/vm/http2_frames.h"

namespace uvmshim::agent::vm {

// Why a host connection on the serial port ended. The listener steers on the
// kind; the text is only logged.
enum class ConnectionEndKind {
  kNone,               // still serving
  kHostReset,          // a reset line (common/serial_reset.h) started a new connection
  kHostReconnected,    // a new HTTP/2 preface at a frame boundary
  kHostDisconnected,   // no host connected for HostPresence::kGoneAfter
  kAgentClosed,        // gRPC closed its end of the socketpair
  kStopping,           // the listener is being destroyed
  kIoError,            // poll/read/write failed (detail names the call)
};
const char* ToString(ConnectionEndKind kind);

struct ConnectionEnd {
  ConnectionEndKind kind = ConnectionEndKind::kNone;
  std::string detail;  // for kIoError: "read port: <strerror>" and the like
  bool ended() const { return kind != ConnectionEndKind::kNone; }
  std::string Describe() const { return detail.empty() ? ToString(kind) : detail; }
};

// A byte buffer between two fds: filled from one, drained into the other.
struct ByteQueue {
  std::vector<char> data = std::vector<char>(64 * 1024);
  std::size_t begin = 0;
  std::size_t end = 0;

  bool empty() const { return begin == end; }
  std::size_t size() const { return end - begin; }
  void Clear() { begin = end = 0; }
  // Replaces the (empty) content with `size` bytes (size <= data.size()).
  void Assign(const char* bytes, std::size_t size);
  // Reads once from fd into an empty buffer: >0 bytes, 0 EOF, -1 error
  // (errno set; EAGAIN means nothing to read).
  ssize_t FillFrom(int fd);
  // Writes what it can; false on a hard error.
  bool DrainTo(int fd);
};

// What one read from the port means for the current host connection.
enum class ChunkAction {
  kForward,        // bytes of this connection: give them to gRPC
  kDrop,           // before any client preface: no connection could parse them
  kNewConnection,  // a reset line or a new preface: the chunk starts the next connection
};

// Follows the host's byte stream of one connection. The gRPC server is fed
// from a client preface on; bytes before it (the tail of an earlier
// connection) are dropped. Frames are followed to spot a new client in the
// stream (see http2_frames.h for why a read boundary is enough).
class HostStreamParser {
 public:
  // Classifies one read; on kNewConnection, *why says which kind started it.
  ChunkAction Classify(const char* data, std::size_t size, ConnectionEndKind* why);
  // The host went away: the next read may be a new host's first, so a client
  // preface there starts a new connection even inside an unfinished frame
  // (a host killed mid-write leaves one).
  void ExpectNewHost() { expect_new_host_ = true; }
  bool started() const { return started_; }
  std::size_t dropped() const { return dropped_; }

 private:
  Http2ClientFrames frames_;
  bool started_ = false;
  bool expect_new_host_ = false;
  std::size_t dropped_ = 0;
};

// Whether a host is connected to the port, as far as the guest can tell.
// virtio_console reports a host's arrival and departure on the control
// virtqueue, handled by a kernel worker, and the host's bytes on the port's
// own queue, handled at once: data overtakes control. A departure the guest
// sees now can be the previous host's, reported after its successor's first
// bytes (even the reset line that started this connection) were read. So a
// departure ends the connection only when it lasted kGoneAfter without the
// host or its data coming back; until then nothing queued for the host is
// dropped (a successor's READY line must reach it).
class HostPresence {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kGoneAfter{2000};

  // The port reported no host (POLLHUP).
  void Away(Clock::time_point now);
  // Bytes from the host arrived: it is there, whatever the port says.
  void DataArrived(Clock::time_point now);
  // The port reported a host again.
  void Present() { away_since_.reset(); }
  bool away() const { return away_since_.has_value(); }
  // True once the host has been away for kGoneAfter.
  bool Gone(Clock::time_point now) const { return away_since_ && now - *away_since_ >= kGoneAfter; }
  // How long to wait before looking at the port again while the host is
  // away (virtio_console's POLLHUP cannot be waited on): 1 ms doubling to 50.
  int NextRecheckMs();

 private:
  std::optional<Clock::time_point> away_since_;
  int recheck_ms_ = 1;
};

// The state of one host connection on the serial port, between the port and
// gRPC's end of the bridge socketpair.
struct SerialConnection {
  ByteQueue to_guest;  // host -> port -> gRPC
  ByteQueue to_host;   // gRPC -> port -> host
  HostStreamParser parser;
  ConnectionEnd end;
  std::vector<char> next_connection;  // the read that starts the next host connection
  HostPresence host;

  // Starts the connection with `first`, the bytes read while waiting for the
  // host. A host that opens with the reset handshake (common/serial_reset.h)
  // gets its READY line before any byte of this connection's gRPC side.
  void Begin(std::vector<char> first);
  // Takes one read from the port (see HostStreamParser).
  void TakeChunk(const char* data, std::size_t size);
  // Ends the connection (a later cause replaces an earlier one, as logged).
  void End(ConnectionEndKind kind, std::string detail = {}) { end = {kind, std::move(detail)}; }
  // Ends it with "<what>: <strerror(errno)>".
  void EndWithErrno(const char* what);
  // Takes one poll round's events on the port (`revents`, already polled):
  // reads into `chunk` when gRPC has room, writes what waits for the host.
  // True when the connection ended.
  bool ServePort(int port, short revents, std::vector<char>& chunk, HostPresence::Clock::time_point now);
};

}  // namespace uvmshim::agent::vm
