#include "stdio_relay.h"

#include "bulk_stdio_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <spdlog/spdlog.h>

namespace uvmshim::host {
namespace {

constexpr std::size_t kStdinChunk = 128 * 1024;

// Writes everything; false once the reader is gone (the rest is discarded so
// the agent never blocks on a vanished reader).
bool WriteAll(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, -1);
        continue;
      }
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

StdioRelay::StdioRelay(AgentClient& agent, std::string container_id, std::string exec_id,
                       StdioFds fds, bool terminal)
    : agent_(agent),
      container_id_(std::move(container_id)),
      exec_id_(std::move(exec_id)),
      fds_(fds),
      terminal_(terminal),
      stop_stdin_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      finish_stdin_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

StdioRelay::~StdioRelay() {
  StopStdin();
  {
    std::lock_guard lock(contexts_mutex_);
    cancelled_ = true;
    for (auto* ctx : live_contexts_) ctx->TryCancel();
  }
  for (auto& t : output_threads_) t.join();
  if (stdin_thread_.joinable()) stdin_thread_.join();
}

void StdioRelay::Start() {
  if (fds_.stdout_fd >= 0)
    output_threads_.emplace_back([this] { PumpOutput(agentpb::STDOUT, fds_.stdout_fd); });
  if (fds_.stderr_fd >= 0 && !terminal_)
    output_threads_.emplace_back([this] { PumpOutput(agentpb::STDERR, fds_.stderr_fd); });
  if (fds_.stdin_fd >= 0) stdin_thread_ = std::thread([this] { PumpStdin(); });
}

void StdioRelay::WaitOutputDone() {
  for (auto& t : output_threads_) t.join();
  output_threads_.clear();
}

void StdioRelay::StopStdin() {
  std::uint64_t one = 1;
  if (stop_stdin_) [[maybe_unused]] auto n = ::write(stop_stdin_.get(), &one, sizeof one);
}

void StdioRelay::FinishStdin() {
  std::uint64_t one = 1;
  if (finish_stdin_) [[maybe_unused]] auto n = ::write(finish_stdin_.get(), &one, sizeof one);
}

// A relay destroyed right after Start (a failed create, a task deleted before
// it started) may cancel before a stream's thread got here: that stream must
// not start, or its call, to a process that never runs, would never end and
// the destructor's join would hang.
bool StdioRelay::Register(grpc::ClientContext* ctx) {
  std::lock_guard lock(contexts_mutex_);
  if (cancelled_) return false;
  live_contexts_.push_back(ctx);
  return true;
}

void StdioRelay::Unregister(grpc::ClientContext* ctx) {
  std::lock_guard lock(contexts_mutex_);
  std::erase(live_contexts_, ctx);
}

bool StdioRelay::IsCancelled() {
  std::lock_guard lock(contexts_mutex_);
  return cancelled_;
}

void StdioRelay::PumpOutput(agentpb::OutputStream which, int fd) {
  grpc::ClientContext ctx;
  if (!Register(&ctx)) return;
  agentpb::ReadOutputRequest request;
  request.set_container_id(container_id_);
  request.set_exec_id(exec_id_);
  request.set_stream(which);
  // Bulk where the VM has the port (a terminal's output stays on gRPC); the
  // agent may still answer over gRPC, which is read the same as before.
  std::unique_ptr<BulkStdioStream> bulk;
  if (BulkStdioChannel* channel = agent_.bulk_stdio(); channel && !terminal_) bulk = channel->OpenStream();
  if (bulk) {
    request.set_bulk_stream_id(bulk->id());
    request.set_bulk_window_bytes(bulk->window());
  }
  const char* name = which == agentpb::STDOUT ? "stdout" : "stderr";
  auto reader = agent_.stub().ReadOutput(&ctx, request);
  agentpb::OutputChunk chunk;
  bool reader_alive = true;
  auto deliver = [&](const std::string& data) {
    bytes_out_ += data.size();
    if (reader_alive && !WriteAll(fd, data)) {
      spdlog::warn("stdio: {} reader of {}/{} went away, discarding the rest", name, container_id_, exec_id_);
      reader_alive = false;
    }
  };
  while (reader->Read(&chunk)) {
    if (chunk.bulk_stream_id() != 0) {
      if (!bulk || chunk.bulk_stream_id() != bulk->id()) {
        spdlog::warn("stdio: ReadOutput {}/{} {}: the agent named bulk stream {}, not ours", container_id_,
                     exec_id_, name, chunk.bulk_stream_id());
        ctx.TryCancel();
        break;
      }
      // The RPC ends right after the stream's end; a stream that failed (or a
      // relay being torn down) cancels it, or the agent would wait for
      // credit that never comes.
      if (!ReceiveBulk(*bulk, deliver, name)) ctx.TryCancel();
      continue;
    }
    deliver(chunk.data());
  }
  grpc::Status status = reader->Finish();
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    spdlog::warn("stdio: ReadOutput {}/{} ended: {}", container_id_, exec_id_,
                 status.error_message());
  }
  Unregister(&ctx);
}

// Every byte up to the stream's end frame, in order; the RPC's end comes
// after it (the agent ends the call only once the end frame is out).
bool StdioRelay::ReceiveBulk(BulkStdioStream& stream, const std::function<void(const std::string&)>& deliver,
                             const char* name) {
  std::string piece;
  for (;;) {
    switch (stream.Take(piece, std::chrono::milliseconds(200))) {
      case BulkStdioStream::Next::kData:
        deliver(piece);
        stream.Consumed(piece.size());
        break;
      case BulkStdioStream::Next::kEnd:
        return true;
      case BulkStdioStream::Next::kFailed:
        spdlog::warn("stdio: bulk {} of {}/{} failed: {}", name, container_id_, exec_id_, stream.failure());
        return false;
      case BulkStdioStream::Next::kTimeout:
        if (IsCancelled()) return false;
        break;
    }
  }
}

void StdioRelay::PumpStdin() {
  grpc::ClientContext ctx;
  if (!Register(&ctx)) return;
  agentpb::WriteStdinResponse response;
  auto writer = agent_.stub().WriteStdin(&ctx, &response);
  agentpb::StdinChunk chunk;
  chunk.set_container_id(container_id_);
  chunk.set_exec_id(exec_id_);
  // Not zero-filled: an idle stdin leaves the 128 KiB untouched (not resident).
  const auto buffer = std::make_unique_for_overwrite<char[]>(kStdinChunk);
  bool eof = false;
  bool stopped = false;
  bool finishing = false;
  while (!eof && !stopped) {
    if (!finishing) {
      pollfd pfds[3] = {{fds_.stdin_fd, POLLIN, 0}, {stop_stdin_.get(), POLLIN, 0},
                        {finish_stdin_.get(), POLLIN, 0}};
      if (::poll(pfds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (pfds[1].revents) {
        stopped = true;
        break;
      }
      if (pfds[2].revents) {
        finishing = true;
        // From here on reads must not block: what is buffered now is the rest.
        ::fcntl(fds_.stdin_fd, F_SETFL, ::fcntl(fds_.stdin_fd, F_GETFL) | O_NONBLOCK);
      }
    }
    ssize_t n = ::read(fds_.stdin_fd, buffer.get(), kStdinChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && !finishing) continue;
    if (n <= 0) {
      eof = true;
      chunk.set_eof(true);
      chunk.clear_data();
    } else {
      chunk.set_data(buffer.get(), static_cast<std::size_t>(n));
    }
    if (!writer->Write(chunk)) break;  // the process is gone
    chunk.clear_container_id();
    chunk.clear_exec_id();
  }
  if (stopped) ctx.TryCancel();
  writer->WritesDone();
  writer->Finish();
  Unregister(&ctx);
}

}  // namespace uvmshim::host
