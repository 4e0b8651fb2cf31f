#include "guest-agent/bulk_output_port.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/bulk_frame.h"
#include "common/error.h"
#include "guest-agent/logging.h"

namespace uvmshim::agent {
namespace {

// The private pipe's size: one data frame moves at most this much.
constexpr int kPrivatePipeBytes = 1024 * 1024;
constexpr int kCancelCheckMs = 500;
constexpr int kHostAwayRecheckMs = 50;

std::string ErrnoText(int error) { return std::strerror(error); }

// The port failed while a frame was half written: nothing after it can be
// parsed by the host, so every stream ends.
class PortBroken : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

// ---------------------------------------------------------------- port

BulkOutputPort::BulkOutputPort(UniqueFd port, std::string description)
    : port_(std::move(port)), description_(std::move(description)),
      stop_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!stop_) throw Error(ErrorCode::kInternal, "bulk stdio port " + description_ + ": eventfd: " + ErrnoText(errno));
  reader_ = std::thread([this] { ReadCredits(); });
  spdlog::info("event=bulk_stdio_port_open port={}", LogQuote(description_));
}

BulkOutputPort::~BulkOutputPort() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(stop_.get(), &one, sizeof one);
  if (reader_.joinable()) reader_.join();
}

std::unique_ptr<BulkStreamWriter> BulkOutputPort::Open(std::uint32_t id, std::uint32_t window) {
  if (id == 0) throw Error(ErrorCode::kInvalidArgument, "bulk_stream_id 0 is not a stream");
  if (window == 0) throw Error(ErrorCode::kInvalidArgument, "bulk_window_bytes must be positive");
  {
    std::lock_guard lock(credit_mu_);
    if (port_failed_)
      throw Error(ErrorCode::kUnavailable, "bulk stdio port " + description_ + " failed earlier");
    if (!credits_.emplace(id, StreamCredit{window}).second)
      throw Error(ErrorCode::kAlreadyExists, "bulk stream " + std::to_string(id) + " is in use");
  }
  // Not make_unique: the constructor is private.
  std::unique_ptr<BulkStreamWriter> writer;
  try {
    writer.reset(new BulkStreamWriter(*this, id, window));
  } catch (...) {
    std::lock_guard lock(credit_mu_);
    credits_.erase(id);
    throw;
  }
  return writer;
}

// Host -> guest: credit frames only. While no host is connected the port
// reports POLLIN|POLLHUP and read() returns 0: look again after a pause.
void BulkOutputPort::ReadCredits() {
  BulkFrameParser parser({.data = {}, .end = {}, .credit = [this](std::uint32_t stream, std::uint32_t granted) {
                            std::lock_guard lock(credit_mu_);
                            // A stream that ended already: its late credit is moot.
                            if (auto it = credits_.find(stream); it != credits_.end()) it->second.available += granted;
                            credit_cv_.notify_all();
                          }});
  std::vector<char> buffer(4096);
  for (;;) {
    pollfd fds[2] = {{port_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      spdlog::error("event=bulk_stdio_poll_failed port={} error={}", LogQuote(description_), LogQuote(ErrnoText(errno)));
      break;
    }
    if (fds[1].revents) return;
    if (fds[0].revents == 0) continue;
    const ssize_t n = (fds[0].revents & POLLIN) ? ::read(port_.get(), buffer.data(), buffer.size()) : 0;
    if (n > 0) {
      if (!parser.Feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
        spdlog::error("event=bulk_stdio_credit_corrupt port={} error={}", LogQuote(description_),
                      LogQuote(parser.error()));
        break;
      }
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      spdlog::error("event=bulk_stdio_read_failed port={} error={}", LogQuote(description_), LogQuote(ErrnoText(errno)));
      break;
    }
    pollfd stop{stop_.get(), POLLIN, 0};
    if (::poll(&stop, 1, kHostAwayRecheckMs) > 0) return;
  }
  std::lock_guard lock(credit_mu_);
  port_failed_ = true;
  credit_cv_.notify_all();
}

// A port whose host is away reports POLLHUP at once: pause instead of spinning.
void BulkOutputPort::WaitWritable() {
  pollfd pfd{port_.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, 100) > 0 && (pfd.revents & POLLHUP) && !(pfd.revents & POLLOUT))
    ::poll(nullptr, 0, 10);
}

void BulkOutputPort::WriteAllLocked(const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(port_.get(), data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      WaitWritable();
      continue;
    }
    throw PortBroken("write " + description_ + ": " + (n == 0 ? std::string("wrote nothing") : ErrnoText(errno)));
  }
}

// ---------------------------------------------------------------- stream

BulkStreamWriter::BulkStreamWriter(BulkOutputPort& port, std::uint32_t id, std::uint32_t)
    : port_(port), id_(id) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw Error(ErrorCode::kInternal, "bulk stream " + std::to_string(id) + ": pipe: " + ErrnoText(errno));
  pipe_read_.reset(fds[0]);
  pipe_write_.reset(fds[1]);
  // Best effort: a smaller pipe only means smaller frames.
  ::fcntl(pipe_write_.get(), F_SETPIPE_SZ, kPrivatePipeBytes);
}

BulkStreamWriter::~BulkStreamWriter() {
  WriteEnd();
  std::lock_guard lock(port_.credit_mu_);
  port_.credits_.erase(id_);
}

std::uint64_t BulkStreamWriter::AwaitCredit(const std::function<bool()>& cancelled) {
  std::unique_lock lock(port_.credit_mu_);
  for (;;) {
    if (port_.port_failed_) return 0;
    const std::uint64_t available = port_.credits_[id_].available;
    if (available > 0) return available;
    port_.credit_cv_.wait_for(lock, std::chrono::milliseconds(kCancelCheckMs));
    if (cancelled && cancelled()) return 0;
  }
}

void BulkStreamWriter::SpendCredit(std::size_t bytes) {
  std::lock_guard credit(port_.credit_mu_);
  auto& available = port_.credits_[id_].available;
  available -= std::min<std::uint64_t>(available, bytes);
}

void BulkStreamWriter::WriteDataHeaderLocked(std::size_t bytes) {
  const std::string header =
      EncodeBulkHeader({.stream = id_, .length = static_cast<std::uint32_t>(bytes), .kind = BulkFrameKind::kData});
  port_.WriteAllLocked(header.data(), header.size());
}

long BulkStreamWriter::MoveOnce(int fd, std::size_t max) {
  // 1. The exact count: the process's pipe into the private one (page moves).
  const ssize_t count = ::splice(fd, nullptr, pipe_write_.get(), nullptr, max, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
  if (count < 0 && errno == EINVAL) return CopyOnce(fd, max);  // not a pipe
  if (count <= 0) return count;
  SpendCredit(static_cast<std::size_t>(count));
  // 2. The header for exactly that count, 3. the payload, as one frame.
  std::lock_guard lock(port_.write_mu_);
  WriteDataHeaderLocked(static_cast<std::size_t>(count));
  std::size_t left = static_cast<std::size_t>(count);
  while (left > 0) {
    const ssize_t moved = ::splice(pipe_read_.get(), nullptr, port_.port_.get(), nullptr, left, SPLICE_F_MOVE);
    if (moved > 0) {
      left -= static_cast<std::size_t>(moved);
      continue;
    }
    if (moved < 0 && errno == EINTR) continue;
    if (moved < 0 && errno == EAGAIN) {  // the port's queue is full: nothing moved
      port_.WaitWritable();
      continue;
    }
    // 0 with bytes still in the private pipe (the trap above) or a port
    // without splice: copy the rest, so the frame keeps its promise.
    spdlog::warn("event=bulk_stdio_splice_short stream={} left={} error={}", id_, left,
                 LogQuote(moved == 0 ? std::string("moved nothing") : ErrnoText(errno)));
    std::vector<char> rest(left);
    std::size_t have = 0;
    while (have < left) {
      const ssize_t n = ::read(pipe_read_.get(), rest.data() + have, left - have);
      if (n > 0) have += static_cast<std::size_t>(n);
      else if (n < 0 && errno == EINTR) continue;
      else throw PortBroken("bulk stream " + std::to_string(id_) + ": the private pipe lost " +
                            std::to_string(left - have) + " bytes");
    }
    port_.WriteAllLocked(rest.data(), rest.size());
    left = 0;
  }
  return count;
}

long BulkStreamWriter::CopyOnce(int fd, std::size_t max) {
  std::vector<char> buffer(std::min<std::size_t>(max, 256 * 1024));
  const ssize_t count = ::read(fd, buffer.data(), buffer.size());
  if (count <= 0) return count;
  SpendCredit(static_cast<std::size_t>(count));
  std::lock_guard lock(port_.write_mu_);
  WriteDataHeaderLocked(static_cast<std::size_t>(count));
  port_.WriteAllLocked(buffer.data(), static_cast<std::size_t>(count));
  return count;
}

PumpEnd BulkStreamWriter::Pump(const PumpSource& source, const std::function<bool()>& cancelled) {
  pollfd fds[2] = {{source.fd, POLLIN, 0}, {source.exited_fd, POLLIN, 0}};
  bool exited = source.exited;
  try {
    for (;;) {
      // Move what is there now; after the exit, until EAGAIN.
      for (;;) {
        const std::uint64_t credit = AwaitCredit(cancelled);
        if (credit == 0) {
          if (cancelled && cancelled()) return PumpEnd::kCancelled;
          errno = EPIPE;  // the port failed
          return PumpEnd::kReadError;
        }
        const long n = MoveOnce(source.fd, static_cast<std::size_t>(std::min<std::uint64_t>(credit, kPrivatePipeBytes)));
        if (n > 0) continue;
        if (n == 0) return PumpEnd::kEof;
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          if (exited) return PumpEnd::kDrainedAfterExit;
          break;
        }
        if (errno == EIO) return PumpEnd::kEof;
        return PumpEnd::kReadError;
      }
      const int ready = ::poll(fds, exited ? 1 : 2, kCancelCheckMs);
      if (ready < 0 && errno != EINTR) return PumpEnd::kReadError;
      if (cancelled && cancelled()) return PumpEnd::kCancelled;
      if (ready > 0 && fds[1].revents != 0) exited = true;
    }
  } catch (const PortBroken& broken) {
    spdlog::error("event=bulk_stdio_port_broken port={} error={}", LogQuote(port_.description()), LogQuote(broken.what()));
    std::lock_guard lock(port_.credit_mu_);
    port_.port_failed_ = true;
    port_.credit_cv_.notify_all();
    ended_ = true;  // an end frame after a broken frame would be read as payload
    errno = EIO;
    return PumpEnd::kReadError;
  }
}

void BulkStreamWriter::WriteEnd() {
  if (ended_ || !announced_) return;  // the host never heard of this stream
  ended_ = true;
  const std::string header = EncodeBulkHeader({.stream = id_, .length = 0, .kind = BulkFrameKind::kEnd});
  try {
    std::lock_guard lock(port_.write_mu_);
    port_.WriteAllLocked(header.data(), header.size());
  } catch (const PortBroken& broken) {
    spdlog::error("event=bulk_stdio_end_failed stream={} error={}", id_, LogQuote(broken.what()));
  }
}

}  // namespace uvmshim::agent
