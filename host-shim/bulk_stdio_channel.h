// The host's end of a utility VM's bulk stdio port (common/bulk_frame.h;
// the agent's end: guest-agent/bulk_output_port.h). One connection to the
// VMM's chardev socket per sandbox; a reader thread sorts the guest's data
// frames into per-stream queues, and each stream's consumer (a StdioRelay
// thread) takes them and grants credit back as it writes them out.
//
// Memory is bounded per stream by its window: the guest never sends more
// than the credit it was granted, and a guest that does fails that stream
// (its data is dropped with an error) instead of growing the queue. The
// reader never blocks on a consumer, so a stalled reader of one stream
// cannot stall the others.
//
// Off by default until it is measured faster and verified in VMs (issue 13):
// UVMSHIM_STDIO_BULK=1 in the shim's environment gives new VMs the port and
// uses it; otherwise every stream goes over gRPC.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/unique_fd.h"

namespace uvmshim::host {

// A stream's window: the most the guest may send ahead of the host's writes.
inline constexpr std::uint32_t kBulkStdioWindowBytes = 4u << 20;

// Whether bulk stdio is on (UVMSHIM_STDIO_BULK=1).
bool BulkStdioEnabled();

class BulkStdioChannel;

// The shared state of one stream (the channel's reader fills it).
struct BulkStreamQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  std::uint64_t queued = 0;
  bool ended = false;   // the end frame arrived: after `pieces`, nothing more
  std::string failure;  // non-empty: the stream cannot be trusted any more
};

class BulkStdioStream {
 public:
  ~BulkStdioStream();  // unregisters (late frames of this id are dropped)
  BulkStdioStream(const BulkStdioStream&) = delete;
  BulkStdioStream& operator=(const BulkStdioStream&) = delete;

  std::uint32_t id() const { return id_; }
  std::uint32_t window() const { return window_; }

  enum class Next { kData, kEnd, kFailed, kTimeout };
  // The next piece into `out` (kData); kEnd once every byte was taken;
  // kFailed with failure(); kTimeout after `wait` without any of these.
  Next Take(std::string& out, std::chrono::milliseconds wait);
  // `bytes` were written out (or discarded): grants them back to the guest,
  // in batches of a quarter window.
  void Consumed(std::size_t bytes);
  std::string failure();

 private:
  friend class BulkStdioChannel;
  BulkStdioStream(BulkStdioChannel& channel, std::uint32_t id, std::uint32_t window,
                  std::shared_ptr<BulkStreamQueue> queue);

  BulkStdioChannel& channel_;
  const std::uint32_t id_;
  const std::uint32_t window_;
  std::shared_ptr<BulkStreamQueue> queue_;
  std::uint64_t ungranted_ = 0;  // consumed, not yet granted back
};

class BulkStdioChannel {
 public:
  // Connects to the VMM's Unix socket. Throws std::runtime_error naming it.
  explicit BulkStdioChannel(const std::filesystem::path& socket);
  // Over an already connected stream socket (tests: a socketpair).
  BulkStdioChannel(UniqueFd connected, std::string description);
  ~BulkStdioChannel();  // stops the reader; streams still open fail
  BulkStdioChannel(const BulkStdioChannel&) = delete;
  BulkStdioChannel& operator=(const BulkStdioChannel&) = delete;

  // A new stream with `window` bytes of initial credit (the agent learns
  // both from ReadOutputRequest); null once the channel failed.
  std::unique_ptr<BulkStdioStream> OpenStream(std::uint32_t window = kBulkStdioWindowBytes);
  // Why the channel failed ("" while it works).
  std::string failure() const;
  const std::string& description() const { return description_; }
  // Data frames for streams nobody has open (dropped), for tests and logs.
  std::uint64_t dropped_bytes() const;

 private:
  friend class BulkStdioStream;
  void Start();
  void ReadFrames();
  void Fail(const std::string& why);
  void SendCredit(std::uint32_t stream, std::uint32_t granted);
  void Close(std::uint32_t stream);

  UniqueFd socket_;
  const std::string description_;
  mutable std::mutex mu_;
  std::map<std::uint32_t, std::shared_ptr<BulkStreamQueue>> streams_;
  std::map<std::uint32_t, std::uint32_t> windows_;
  std::uint32_t next_id_ = 1;
  std::string failure_;
  std::uint64_t dropped_bytes_ = 0;
  std::mutex write_mu_;  // credit frames are written whole
  std::thread reader_;
};

}  // namespace uvmshim::host
