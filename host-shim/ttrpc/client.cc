#include "ttrpc/client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

namespace uvmshim::ttrpc {
namespace {

struct PendingCall {
  bool done = false;
  Result result;
};

}  // namespace

struct Client::State {
  explicit State(UniqueFd f) : fd(std::move(f)), wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake) throw std::system_error(errno, std::generic_category(), "eventfd for ttrpc client");
  }

  void ReaderLoop();
  // Marks the connection dead and fails every pending call with `why`.
  void FailAllLocked(const std::string& why) {
    closed = true;
    if (close_reason.empty()) close_reason = why;
    for (auto& [id, call] : pending) {
      call->done = true;
      call->result = Status(Code::kUnavailable, "ttrpc connection closed: " + close_reason);
    }
    pending.clear();
    cv.notify_all();
  }
  void Deliver(std::uint32_t stream_id, Result result) {
    std::lock_guard lock(mu);
    auto it = pending.find(stream_id);
    if (it == pending.end()) {
      spdlog::debug("ttrpc client: response for unknown or timed-out stream {}", stream_id);
      return;
    }
    it->second->done = true;
    it->second->result = std::move(result);
    pending.erase(it);
    cv.notify_all();
  }

  UniqueFd fd;
  UniqueFd wake;  // readable once Close() was called
  std::mutex write_mu;

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::uint32_t, std::shared_ptr<PendingCall>> pending;
  std::uint32_t next_stream_id = 1;
  bool closed = false;
  std::string close_reason;
};

void Client::State::ReaderLoop() {
  FrameDecoder decoder;
  // Not zero-filled: only the pages a read fills become resident, so an idle
  // connection does not hold 64 KiB in every shim (issue #13, shim memory).
  constexpr std::size_t kReadChunk = 64 * 1024;
  const auto buf = std::make_unique_for_overwrite<char[]>(kReadChunk);
  std::string why;
  while (why.empty()) {
    pollfd fds[2] = {{fd.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      why = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (fds[1].revents & POLLIN) {
      why = "closed by the client";
      break;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const ssize_t n = ::read(fd.get(), buf.get(), kReadChunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      why = std::string("read: ") + std::strerror(errno);
      break;
    }
    if (n == 0) {
      why = "closed by the server";
      break;
    }
    decoder.Feed(std::string_view(buf.get(), static_cast<std::size_t>(n)));
    while (auto frame = decoder.Next()) {
      if (auto* oversized = std::get_if<OversizedFrame>(&*frame)) {
        Deliver(oversized->header.stream_id, Result(OversizedStatus(oversized->header.length)));
        continue;
      }
      auto& f = std::get<Frame>(*frame);
      if (f.header.type != static_cast<std::uint8_t>(FrameType::kResponse)) {
        spdlog::warn("ttrpc client: ignoring frame of type {} on stream {}", f.header.type,
                     f.header.stream_id);
        continue;
      }
      auto result = DecodeResponse(f.payload);
      if (!result) {
        Deliver(f.header.stream_id, Result(Status(Code::kInternal, "undecodable ttrpc.Response")));
        continue;
      }
      Deliver(f.header.stream_id, std::move(*result));
    }
  }
  std::lock_guard lock(mu);
  FailAllLocked(why);
}

std::unique_ptr<Client> Client::Connect(std::string_view address) {
  return std::make_unique<Client>(ConnectUnix(address));
}

Client::Client(UniqueFd connected_socket) : state_(std::make_shared<State>(std::move(connected_socket))) {
  reader_ = std::thread([state = state_] { state->ReaderLoop(); });
}

Client::~Client() { Close(); }

void Client::Close() {
  const std::uint64_t one = 1;
  if (::write(state_->wake.get(), &one, sizeof one) != sizeof one) {
    spdlog::error("ttrpc client close: signal eventfd: {}", std::strerror(errno));
  }
  if (reader_.joinable()) reader_.join();
  ::shutdown(state_->fd.get(), SHUT_RDWR);
}

bool Client::closed() const {
  std::lock_guard lock(state_->mu);
  return state_->closed;
}

Result Client::Call(std::string_view service, std::string_view method, std::string_view payload,
                    const CallOptions& options) {
  RequestMessage request{std::string(service), std::string(method), std::string(payload), 0,
                         options.metadata};
  if (options.timeout) request.timeout_nano = options.timeout->count();
  const std::string body = EncodeRequest(request);
  if (body.size() > kMaxMessageSize) return Result(OversizedStatus(body.size()));

  auto call = std::make_shared<PendingCall>();
  std::uint32_t stream_id;
  {
    std::lock_guard lock(state_->mu);
    if (state_->closed) {
      return Result(Status(Code::kUnavailable, "ttrpc connection closed: " + state_->close_reason));
    }
    stream_id = state_->next_stream_id;
    state_->next_stream_id += 2;  // stays odd, wraps to 1 after 2^32 - 1
    state_->pending.emplace(stream_id, call);
  }
  const std::string frame = EncodeFrame(stream_id, FrameType::kRequest, body);
  int send_error;
  {
    std::lock_guard lock(state_->write_mu);
    send_error = SendAll(state_->fd.get(), frame);
  }
  std::unique_lock lock(state_->mu);
  if (send_error != 0 && !call->done) {
    state_->pending.erase(stream_id);
    return Result(Status(Code::kUnavailable, "send ttrpc request " + request.service + "/" +
                                                 request.method + ": " + std::strerror(send_error)));
  }
  const auto done = [&] { return call->done; };
  if (options.timeout) {
    if (!state_->cv.wait_for(lock, *options.timeout, done)) {
      state_->pending.erase(stream_id);
      return Result(Status(Code::kDeadlineExceeded,
                           "ttrpc call " + request.service + "/" + request.method + " timed out after " +
                               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  *options.timeout)
                                                  .count()) +
                               " ms"));
    }
  } else {
    state_->cv.wait(lock, done);
  }
  return std::move(call->result);
}

}  // namespace uvmshim::ttrpc
