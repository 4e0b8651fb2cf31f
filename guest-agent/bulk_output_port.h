// The agent's end of the bulk stdio port (common/bulk_frame.h): a process's
// output moves from its pipe to the port with splice(), behind a frame
// header, instead of being copied into gRPC messages (the guest's copies are
// what bounds stdout under TCG).
//
// The port is one byte stream shared by every bulk stream: one writer at a
// time (header and payload under one mutex). The host grants credit per
// stream; a stream without credit waits, so a stalled host reader stalls only
// its own stream and the host holds at most the window per stream.
//
// The trap this avoids (linux 6.1 virtio_console port_fops_splice_write): a
// splice from a pipe into the port returns 0 at once when the pipe is empty
// and moves whatever the pipe holds. So a header must never promise bytes
// that are not there yet: the process's pipe is first spliced into a private
// pipe (returns the exact count N), then the header for N is written, then
// the private pipe is spliced into the port until N bytes moved.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/unique_fd.h"
#include "guest-agent/output_pump.h"

namespace uvmshim::agent {

class BulkOutputPort;

// One stream's writer; its frames go out under the port's writer mutex.
class BulkStreamWriter {
 public:
  ~BulkStreamWriter();  // unregisters; writes the end frame if begun and not ended
  BulkStreamWriter(const BulkStreamWriter&) = delete;
  BulkStreamWriter& operator=(const BulkStreamWriter&) = delete;

  std::uint32_t id() const { return id_; }
  // The host was told (the marker chunk went out): the end frame is owed.
  void MarkAnnounced() { announced_ = true; }

  // Moves the process's output at `source` to the port until it ended (the
  // rules of PumpOutput in output_pump.h: EOF, or drained after the exit),
  // waiting for credit as the host grants it. kCancelled when `cancelled`
  // turned true (checked about twice a second while waiting).
  PumpEnd Pump(const PumpSource& source, const std::function<bool()>& cancelled);
  // Writes the end frame (once, and only once announced): the host then
  // knows every byte arrived.
  void WriteEnd();

 private:
  friend class BulkOutputPort;
  BulkStreamWriter(BulkOutputPort& port, std::uint32_t id, std::uint32_t window);

  // Waits for credit; 0 when cancelled.
  std::uint64_t AwaitCredit(const std::function<bool()>& cancelled);
  // One data frame of at most `max` bytes from `fd`: >0 moved, 0 EOF, -1 with
  // errno (EAGAIN: nothing there now).
  // Takes `bytes` off the stream's credit (the guest sends no more than granted).
  void SpendCredit(std::size_t bytes);
  // The data frame header for `bytes`; the caller holds the port's write lock.
  void WriteDataHeaderLocked(std::size_t bytes);
  long MoveOnce(int fd, std::size_t max);
  // The same by read() and write(), for an fd splice() refuses.
  long CopyOnce(int fd, std::size_t max);

  BulkOutputPort& port_;
  const std::uint32_t id_;
  UniqueFd pipe_read_;   // the private pipe (O_NONBLOCK both ends)
  UniqueFd pipe_write_;
  bool announced_ = false;
  bool ended_ = false;
};

class BulkOutputPort {
 public:
  // Takes the opened port (a character device, O_NONBLOCK) and starts the
  // credit reader. Throws uvmshim::Error when the thread's eventfd fails.
  explicit BulkOutputPort(UniqueFd port, std::string description);
  ~BulkOutputPort();
  BulkOutputPort(const BulkOutputPort&) = delete;
  BulkOutputPort& operator=(const BulkOutputPort&) = delete;

  // Registers stream `id` with an initial credit of `window` bytes. Throws
  // uvmshim::Error kInvalidArgument for id 0, window 0, or an id in use.
  std::unique_ptr<BulkStreamWriter> Open(std::uint32_t id, std::uint32_t window);
  const std::string& description() const { return description_; }

 private:
  friend class BulkStreamWriter;
  struct StreamCredit {
    std::uint64_t available = 0;
  };

  void ReadCredits();
  // Writes all of `bytes` to the port (holding write_mu_).
  void WriteAllLocked(const char* data, std::size_t size);
  // Waits (briefly) until the port takes more.
  void WaitWritable();

  UniqueFd port_;
  const std::string description_;
  UniqueFd stop_;  // eventfd
  std::mutex write_mu_;  // one frame (header + payload) at a time

  std::mutex credit_mu_;
  std::condition_variable credit_cv_;
  std::map<std::uint32_t, StreamCredit> credits_;
  bool port_failed_ = false;  // credit_mu_: the host side is corrupt; streams end

  std::thread reader_;
};

}  // namespace uvmshim::agent
