#include "ttrpc/server.h"

#include <fcntl.h>
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
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace uvmshim::ttrpc {
namespace {

struct Connection {
  Connection(UniqueFd f, PeerCredentials p, std::uint64_t i) : fd(std::move(f)), peer(p), id(i) {}

  // Writes one whole response frame; frames of concurrent handlers never interleave.
  void SendResponse(std::uint32_t stream_id, const Result& result) {
    std::string payload = EncodeResponse(result);
    if (payload.size() > kMaxMessageSize) {
      spdlog::warn("ttrpc conn {}: response on stream {} is {} bytes, over the limit", id, stream_id,
                   payload.size());
      payload = EncodeResponse(Result(OversizedStatus(payload.size())));
    }
    const std::string frame = EncodeFrame(stream_id, FrameType::kResponse, payload);
    std::lock_guard lock(write_mu);
    if (const int err = SendAll(fd.get(), frame); err != 0) {
      spdlog::debug("ttrpc conn {}: write response for stream {}: {}", id, stream_id,
                    std::strerror(err));
    }
  }

  UniqueFd fd;
  const PeerCredentials peer;
  const std::uint64_t id;
  std::mutex write_mu;
  std::stop_source stop;
  // Guarded by Server::State::mu.
  std::size_t in_flight = 0;
  bool reader_done = false;
};

using ConnectionPtr = std::shared_ptr<Connection>;

}  // namespace

struct Server::State : std::enable_shared_from_this<Server::State> {
  explicit State(ServerOptions o) : options(o), wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake) throw std::system_error(errno, std::generic_category(), "eventfd for ttrpc server");
  }

  void AcceptLoop(UniqueFd listener);
  void ReaderLoop(const ConnectionPtr& conn);
  void Dispatch(const ConnectionPtr& conn, ServerRequest&& req);
  void RunHandler(const ConnectionPtr& conn, const Handler& handler, const RequestContext& ctx,
                  const std::string& payload);

  // Drops the connection from the table (closing its fd with the last
  // reference) once neither its reader nor a handler uses it.
  void ReleaseIfIdleLocked(const ConnectionPtr& conn) {
    if (conn->reader_done && conn->in_flight == 0) connections.erase(conn->id);
  }

  const ServerOptions options;
  UniqueFd wake;  // becomes readable when shutdown begins: ends accept and reader loops

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const Handler>> handlers;
  std::map<std::uint64_t, ConnectionPtr> connections;
  std::uint64_t next_connection_id = 1;
  std::size_t readers = 0;
  std::size_t running_handlers = 0;
  bool serving = false;
  bool stopping = false;
};

void Server::State::AcceptLoop(UniqueFd listener) {
  for (;;) {
    pollfd fds[2] = {{listener.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("ttrpc server: poll on listener: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) {
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        spdlog::error("ttrpc server: listener failed (revents {:#x})", fds[0].revents);
        return;
      }
      continue;
    }
    UniqueFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK || err == ECONNABORTED) continue;
      spdlog::error("ttrpc server: accept: {}", std::strerror(err));
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        pollfd w{wake.get(), POLLIN, 0};
        ::poll(&w, 1, 100);  // back off until fds free up, unless shutting down
        continue;
      }
      return;
    }
    PeerCredentials peer;
    try {
      peer = GetPeerCredentials(fd.get());
    } catch (const std::exception& e) {
      spdlog::warn("ttrpc server: dropping connection: {}", e.what());
      continue;
    }
    if (!PeerAllowed(peer, options.allowed_uid)) {
      spdlog::warn("ttrpc server: rejecting connection from pid {} uid {}: only uid {} and root may connect",
                   peer.pid, peer.uid, options.allowed_uid);
      continue;
    }
    ConnectionPtr conn;
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      conn = std::make_shared<Connection>(std::move(fd), peer, next_connection_id++);
      connections.emplace(conn->id, conn);
      ++readers;
    }
    spdlog::debug("ttrpc conn {}: accepted from pid {} uid {}", conn->id, peer.pid, peer.uid);
    try {
      std::thread([self = shared_from_this(), conn] { self->ReaderLoop(conn); }).detach();
    } catch (const std::system_error& e) {
      spdlog::error("ttrpc conn {}: cannot start reader thread: {}", conn->id, e.what());
      std::lock_guard lock(mu);
      --readers;
      conn->reader_done = true;
      ReleaseIfIdleLocked(conn);
      cv.notify_all();
    }
  }
}

void Server::State::ReaderLoop(const ConnectionPtr& conn) {
  FrameDecoder decoder;
  // Not zero-filled: only the pages a read fills become resident, so an idle
  // connection does not hold 64 KiB in every shim (issue #13, shim memory).
  constexpr std::size_t kReadChunk = 64 * 1024;
  const auto buf = std::make_unique_for_overwrite<char[]>(kReadChunk);
  bool ended_by_shutdown = false;
  for (bool open = true; open;) {
    pollfd fds[2] = {{conn->fd.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("ttrpc conn {}: poll: {}", conn->id, std::strerror(errno));
      break;
    }
    if (fds[1].revents & POLLIN) {
      ended_by_shutdown = true;
      break;
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const ssize_t n = ::read(conn->fd.get(), buf.get(), kReadChunk);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      spdlog::debug("ttrpc conn {}: read: {}", conn->id, std::strerror(errno));
      break;
    }
    if (n == 0) {
      if (!decoder.AtFrameBoundary()) {
        spdlog::warn("ttrpc conn {}: peer closed in the middle of a frame", conn->id);
      }
      break;
    }
    decoder.Feed(std::string_view(buf.get(), static_cast<std::size_t>(n)));
    while (open) {
      auto frame = decoder.Next();
      if (!frame) break;
      auto action = ClassifyServerFrame(*frame);
      if (auto* request = std::get_if<ServerRequest>(&action)) {
        Dispatch(conn, std::move(*request));
      } else if (auto* reply = std::get_if<ServerReply>(&action)) {
        spdlog::warn("ttrpc conn {}: stream {}: {}", conn->id, reply->stream_id, reply->status.ToString());
        conn->SendResponse(reply->stream_id, Result(reply->status));
      } else {
        auto& error = std::get<ServerProtocolError>(action);
        spdlog::warn("ttrpc conn {} (pid {}): {}; closing the connection", conn->id, conn->peer.pid,
                     error.reason);
        if (error.last_reply) conn->SendResponse(error.last_reply->stream_id, Result(error.last_reply->status));
        open = false;
      }
    }
    if (!open) ::shutdown(conn->fd.get(), SHUT_RDWR);
  }
  // The client is gone: blocking handlers may give up. On shutdown the grace
  // period decides instead.
  if (!ended_by_shutdown) conn->stop.request_stop();
  std::lock_guard lock(mu);
  --readers;
  conn->reader_done = true;
  ReleaseIfIdleLocked(conn);
  cv.notify_all();
}

void Server::State::Dispatch(const ConnectionPtr& conn, ServerRequest&& req) {
  std::shared_ptr<const Handler> handler;
  std::optional<Status> refusal;
  {
    std::lock_guard lock(mu);
    auto it = handlers.find({req.request.service, req.request.method});
    if (it == handlers.end()) {
      auto svc = handlers.lower_bound({req.request.service, std::string()});
      const bool service_known = svc != handlers.end() && svc->first.first == req.request.service;
      refusal = service_known
                    ? Status(Code::kUnimplemented, "method " + req.request.service + "/" +
                                                       req.request.method + " not implemented")
                    : Status(Code::kUnimplemented, "service " + req.request.service + " not implemented");
    } else if (conn->in_flight >= options.max_in_flight_per_connection) {
      refusal = Status(Code::kResourceExhausted,
                       "too many concurrent requests on this connection (" +
                           std::to_string(conn->in_flight) + ")");
    } else {
      handler = it->second;
      ++conn->in_flight;
      ++running_handlers;
    }
  }
  if (refusal) {
    spdlog::debug("ttrpc conn {}: stream {}: {}", conn->id, req.stream_id, refusal->ToString());
    conn->SendResponse(req.stream_id, Result(std::move(*refusal)));
    return;
  }

  RequestContext ctx;
  ctx.stream_id = req.stream_id;
  ctx.service = std::move(req.request.service);
  ctx.method = std::move(req.request.method);
  ctx.metadata = std::move(req.request.metadata);
  ctx.timeout_nano = req.request.timeout_nano;
  if (ctx.timeout_nano > 0) {
    ctx.deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ctx.timeout_nano);
  }
  ctx.peer = conn->peer;
  ctx.stop = conn->stop.get_token();
  const auto stream_id = ctx.stream_id;
  try {
    std::thread([self = shared_from_this(), conn, handler, ctx = std::move(ctx),
                 payload = std::move(req.request.payload)] {
      self->RunHandler(conn, *handler, ctx, payload);
    }).detach();
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(mu);
      --conn->in_flight;
      --running_handlers;
      cv.notify_all();
    }
    conn->SendResponse(stream_id, Result(Status(Code::kResourceExhausted,
                                                std::string("no thread for the request: ") + e.what())));
  }
}

void Server::State::RunHandler(const ConnectionPtr& conn, const Handler& handler, const RequestContext& ctx,
                               const std::string& payload) {
  Result result;
  try {
    result = handler(ctx, payload);
  } catch (const std::exception& e) {
    spdlog::error("ttrpc {}/{} threw: {}", ctx.service, ctx.method, e.what());
    result = Status(Code::kInternal, e.what());
  } catch (...) {
    spdlog::error("ttrpc {}/{} threw a non-standard exception", ctx.service, ctx.method);
    result = Status(Code::kInternal, "handler threw a non-standard exception");
  }
  conn->SendResponse(ctx.stream_id, result);
  std::lock_guard lock(mu);
  --conn->in_flight;
  --running_handlers;
  ReleaseIfIdleLocked(conn);
  cv.notify_all();
}

Server::Server(ServerOptions options) : state_(std::make_shared<State>(options)) {}

Server::~Server() { Shutdown(); }

void Server::Register(std::string service, std::string method, Handler handler) {
  std::lock_guard lock(state_->mu);
  state_->handlers[{std::move(service), std::move(method)}] =
      std::make_shared<const Handler>(std::move(handler));
}

void Server::Listen(const std::string& path) {
  UniqueFd listener = ListenUnix(path);
  owned_path_ = path;
  try {
    Serve(std::move(listener));
  } catch (...) {
    if (path[0] != '@') ::unlink(path.c_str());
    owned_path_.clear();
    throw;
  }
}

void Server::Serve(UniqueFd listener) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->serving || state_->stopping) {
      throw std::logic_error("ttrpc Server::Serve: already serving or shut down");
    }
    state_->serving = true;
  }
  // Non-blocking so a connection that vanishes between poll and accept cannot stall the loop.
  const int flags = ::fcntl(listener.get(), F_GETFL);
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "set O_NONBLOCK on ttrpc listener");
  }
  accept_thread_ = std::thread([state = state_, l = std::move(listener)]() mutable {
    state->AcceptLoop(std::move(l));
  });
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;
    state_->stopping = true;
  }
  const std::uint64_t one = 1;
  if (::write(state_->wake.get(), &one, sizeof one) != sizeof one) {
    spdlog::error("ttrpc server shutdown: signal eventfd: {}", std::strerror(errno));
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  if (!owned_path_.empty()) {
    if (owned_path_[0] != '@') ::unlink(owned_path_.c_str());
    owned_path_.clear();
  }
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] { return state_->readers == 0; });
  const auto idle = [&] { return state_->running_handlers == 0; };
  if (!state_->cv.wait_for(lock, grace, idle)) {
    spdlog::warn("ttrpc server shutdown: {} requests still running after {} ms; requesting them to stop",
                 state_->running_handlers, grace.count());
    for (auto& [id, conn] : state_->connections) conn->stop.request_stop();
    while (!state_->cv.wait_for(lock, std::chrono::seconds(5), idle)) {
      spdlog::warn("ttrpc server shutdown: still waiting for {} requests", state_->running_handlers);
    }
  }
  // Normally empty by now: every connection released itself when its reader and handlers ended.
  for (auto& [id, conn] : state_->connections) ::shutdown(conn->fd.get(), SHUT_RDWR);
  state_->connections.clear();
}

std::size_t Server::connection_count() const {
  std::lock_guard lock(state_->mu);
  return state_->connections.size();
}

}  // namespace uvmshim::ttrpc
