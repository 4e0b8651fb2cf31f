// Moves a process's output (a pipe or pty master) to a reader, chunk by chunk.
//
// The rules: every byte written before the process exited is delivered, in
// order, and the pump ends right after the exit was reaped and the fd was
// drained (non-blocking reads until EAGAIN) -- it never waits for EOF once the
// process has exited, so a background child holding the pipe open cannot hang
// it. The sink blocks to apply backpressure (gRPC flow control), so at most
// one chunk is held in memory.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace uvmshim::agent {

// The largest chunk (one gRPC message); reads start at kFirstReadBytes and
// double while they come back full.
inline constexpr size_t kOutputChunkBytes = 1024 * 1024 - 64;  // + proto framing: one 1 MiB slice
inline constexpr size_t kFirstReadBytes = 64 * 1024;

enum class PumpEnd {
  kEof,               // the writers closed the pipe (or the pty slave: EIO)
  kDrainedAfterExit,  // the process exited and the fd had no more data
  kSinkClosed,        // the sink returned false (reader went away)
  kCancelled,         // `cancelled` returned true
  kReadError,
};

struct PumpSource {
  int fd = -1;           // O_NONBLOCK read end
  int exited_fd = -1;    // readable once the process exited (an eventfd that is never read)
  bool exited = false;   // the process exited already: drain and end
};

// Reads into `buffer` (resized to at most max_chunk_bytes) and calls
// sink(buffer) for every non-empty chunk. `cancelled` is polled about twice a
// second while no data arrives.
PumpEnd PumpOutput(const PumpSource& source, std::string& buffer,
                   const std::function<bool(std::string&)>& sink,
                   const std::function<bool()>& cancelled, size_t max_chunk_bytes = kOutputChunkBytes);

const char* ToString(PumpEnd end);

}  // namespace uvmshim::agent
