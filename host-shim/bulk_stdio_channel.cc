#include "bulk_stdio_channel.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/bulk_frame.h"

namespace uvmshim::host {
namespace {

constexpr std::size_t kReadBytes = 256 * 1024;

}  // namespace

bool BulkStdioEnabled() {
  const char* value = std::getenv("UVMSHIM_STDIO_BULK");
  return value != nullptr && std::string_view(value) == "1";
}

// ---------------------------------------------------------------- stream

BulkStdioStream::BulkStdioStream(BulkStdioChannel& channel, std::uint32_t id, std::uint32_t window,
                                 std::shared_ptr<BulkStreamQueue> queue)
    : channel_(channel), id_(id), window_(window), queue_(std::move(queue)) {}

BulkStdioStream::~BulkStdioStream() { channel_.Close(id_); }

BulkStdioStream::Next BulkStdioStream::Take(std::string& out, std::chrono::milliseconds wait) {
  std::unique_lock lock(queue_->mu);
  queue_->cv.wait_for(lock, wait, [&] {
    return !queue_->pieces.empty() || queue_->ended || !queue_->failure.empty();
  });
  // What arrived before a failure is still delivered first: it was whole.
  if (!queue_->pieces.empty()) {
    out = std::move(queue_->pieces.front());
    queue_->pieces.pop_front();
    queue_->queued -= out.size();
    return Next::kData;
  }
  if (queue_->ended) return Next::kEnd;
  if (!queue_->failure.empty()) return Next::kFailed;
  return Next::kTimeout;
}

void BulkStdioStream::Consumed(std::size_t bytes) {
  ungranted_ += bytes;
  if (ungranted_ < window_ / 4) return;
  channel_.SendCredit(id_, static_cast<std::uint32_t>(ungranted_));
  ungranted_ = 0;
}

std::string BulkStdioStream::failure() {
  std::lock_guard lock(queue_->mu);
  return queue_->failure;
}

// ---------------------------------------------------------------- channel

BulkStdioChannel::BulkStdioChannel(const std::filesystem::path& socket)
    : socket_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)), description_(socket.string()) {
  if (!socket_) throw std::runtime_error("bulk stdio socket " + description_ + ": socket: " + std::strerror(errno));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (description_.size() >= sizeof address.sun_path)
    throw std::runtime_error("bulk stdio socket " + description_ + ": path too long");
  std::memcpy(address.sun_path, description_.c_str(), description_.size() + 1);
  if (::connect(socket_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("bulk stdio socket " + description_ + ": connect: " + std::strerror(errno));
  Start();
}

BulkStdioChannel::BulkStdioChannel(UniqueFd connected, std::string description)
    : socket_(std::move(connected)), description_(std::move(description)) {
  Start();
}

void BulkStdioChannel::Start() {
  reader_ = std::thread([this] { ReadFrames(); });
}

BulkStdioChannel::~BulkStdioChannel() {
  ::shutdown(socket_.get(), SHUT_RDWR);  // ends the reader's read()
  if (reader_.joinable()) reader_.join();
}

std::unique_ptr<BulkStdioStream> BulkStdioChannel::OpenStream(std::uint32_t window) {
  std::lock_guard lock(mu_);
  if (!failure_.empty()) return nullptr;
  std::uint32_t id = next_id_;
  while (id == 0 || streams_.count(id)) ++id;  // 0 is not a stream; ids wrap after 2^32
  next_id_ = id + 1;
  auto queue = std::make_shared<BulkStreamQueue>();
  streams_.emplace(id, queue);
  windows_.emplace(id, window);
  return std::unique_ptr<BulkStdioStream>(new BulkStdioStream(*this, id, window, std::move(queue)));
}

void BulkStdioChannel::Close(std::uint32_t stream) {
  std::lock_guard lock(mu_);
  streams_.erase(stream);
  windows_.erase(stream);
}

std::string BulkStdioChannel::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

std::uint64_t BulkStdioChannel::dropped_bytes() const {
  std::lock_guard lock(mu_);
  return dropped_bytes_;
}

void BulkStdioChannel::Fail(const std::string& why) {
  std::map<std::uint32_t, std::shared_ptr<BulkStreamQueue>> streams;
  {
    std::lock_guard lock(mu_);
    if (failure_.empty()) failure_ = why;
    streams = streams_;
  }
  for (auto& [id, queue] : streams) {
    std::lock_guard lock(queue->mu);
    if (!queue->ended && queue->failure.empty()) queue->failure = why;
    queue->cv.notify_all();
  }
}

void BulkStdioChannel::SendCredit(std::uint32_t stream, std::uint32_t granted) {
  const std::string frame = EncodeBulkHeader({.stream = stream, .length = granted, .kind = BulkFrameKind::kCredit});
  std::lock_guard lock(write_mu_);
  std::size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n = ::send(socket_.get(), frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      // The VM is gone: the reader sees it too and fails every stream.
      spdlog::debug("bulk stdio {}: credit for stream {} not sent: {}", description_, stream, std::strerror(errno));
      return;
    }
  }
}

void BulkStdioChannel::ReadFrames() {
  // The queue of the stream the current payload belongs to (looked up once
  // per frame, not per piece).
  std::uint32_t current_id = 0;
  std::shared_ptr<BulkStreamQueue> current;
  std::uint32_t current_window = 0;
  auto find = [&](std::uint32_t stream) {
    if (stream == current_id) return;
    std::lock_guard lock(mu_);
    current_id = stream;
    auto it = streams_.find(stream);
    current = it == streams_.end() ? nullptr : it->second;
    current_window = current ? windows_[stream] : 0;
  };
  BulkFrameParser parser({
      .data =
          [&](std::uint32_t stream, std::string_view piece) {
            find(stream);
            if (!current) {
              std::lock_guard lock(mu_);
              dropped_bytes_ += piece.size();
              return;
            }
            std::lock_guard lock(current->mu);
            if (current->ended || !current->failure.empty()) return;
            if (current->queued + piece.size() > current_window) {
              current->failure = "the guest sent stream " + std::to_string(stream) + " more than its credit (" +
                                 std::to_string(current_window) + " bytes window)";
              current->pieces.clear();
              current->queued = 0;
            } else {
              current->pieces.emplace_back(piece);
              current->queued += piece.size();
            }
            current->cv.notify_all();
          },
      .end =
          [&](std::uint32_t stream) {
            find(stream);
            if (!current) return;
            std::lock_guard lock(current->mu);
            current->ended = true;
            current->cv.notify_all();
            current_id = 0;  // the id may be reused after Close
            current.reset();
          },
      .credit =
          [&](std::uint32_t stream, std::uint32_t) {
            spdlog::warn("bulk stdio {}: the guest sent a credit frame (stream {})", description_, stream);
          },
  });
  std::vector<char> buffer(kReadBytes);
  for (;;) {
    const ssize_t n = ::read(socket_.get(), buffer.data(), buffer.size());
    if (n > 0) {
      if (!parser.Feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)))) {
        spdlog::error("bulk stdio {}: {}", description_, parser.error());
        Fail(parser.error());
        return;
      }
      // A stream closed since: forget its queue at the next frame.
      current_id = 0;
      current.reset();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    Fail(n == 0 ? "the VM's bulk stdio port closed" : std::string("read: ") + std::strerror(errno));
    return;
  }
}

}  // namespace uvmshim::host
