#include "guest-agent/output_pump.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace uvmshim::agent {
namespace {

enum class ReadResult { kData, kAgain, kEof, kError };

ReadResult ReadChunk(int fd, std::string& buffer, size_t chunk_bytes) {
  buffer.resize(chunk_bytes);
  for (;;) {
    ssize_t n = read(fd, buffer.data(), chunk_bytes);
    if (n > 0) {
      buffer.resize(static_cast<size_t>(n));
      return ReadResult::kData;
    }
    buffer.clear();
    if (n == 0) return ReadResult::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return ReadResult::kAgain;
    if (errno == EIO) return ReadResult::kEof;  // pty master after the last slave fd closed
    return ReadResult::kError;
  }
}

}  // namespace

PumpEnd PumpOutput(const PumpSource& source, std::string& buffer,
                   const std::function<bool(std::string&)>& sink,
                   const std::function<bool()>& cancelled, size_t max_chunk_bytes) {
  pollfd fds[2] = {{source.fd, POLLIN, 0}, {source.exited_fd, POLLIN, 0}};
  // Reads start small and double while they come back full: a trickle of
  // output costs little memory (and no big zero-filled buffers), a flood
  // moves in max-size chunks.
  size_t chunk_bytes = std::min(kFirstReadBytes, max_chunk_bytes);
  for (;;) {
    int ready = source.exited ? 1 : poll(fds, 2, 500);
    if (ready < 0 && errno != EINTR) return PumpEnd::kReadError;
    if (cancelled && cancelled()) return PumpEnd::kCancelled;
    if (ready <= 0) continue;
    bool exited = source.exited || fds[1].revents != 0;
    if (fds[0].revents != 0 || exited) {
      // Read what is there now; after the exit, keep going until EAGAIN.
      for (;;) {
        switch (ReadChunk(source.fd, buffer, chunk_bytes)) {
          case ReadResult::kData: {
            size_t got = buffer.size();
            if (!sink(buffer)) return PumpEnd::kSinkClosed;
            if (got < chunk_bytes) {
              if (!exited) goto next_poll;  // likely empty now
            } else if (chunk_bytes < max_chunk_bytes) {
              chunk_bytes = std::min(chunk_bytes * 2, max_chunk_bytes);
            }
            continue;
          }
          case ReadResult::kAgain:
            if (exited) return PumpEnd::kDrainedAfterExit;
            goto next_poll;
          case ReadResult::kEof:
            return PumpEnd::kEof;
          case ReadResult::kError:
            return PumpEnd::kReadError;
        }
      }
    }
  next_poll:;
  }
}

const char* ToString(PumpEnd end) {
  switch (end) {
    case PumpEnd::kEof: return "eof";
    case PumpEnd::kDrainedAfterExit: return "drained_after_exit";
    case PumpEnd::kSinkClosed: return "sink_closed";
    case PumpEnd::kCancelled: return "cancelled";
    case PumpEnd::kReadError: return "read_error";
  }
  return "unknown";
}

}  // namespace uvmshim::agent
