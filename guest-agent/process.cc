#include "guest-agent/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <spdlog/spdlog.h>
#include <system_error>

#include "guest-agent/exit_status.h"
#include "guest-agent/step_timer.h"

namespace uvmshim::agent {
namespace {

void SetNonBlocking(int fd) {
  if (fd < 0) return;
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string ErrnoText(int error) { return std::strerror(error); }

const char* OutputName(OutputKind kind) { return kind == OutputKind::kStdout ? "stdout" : "stderr"; }

}  // namespace

Process::Process(std::string name, std::string exec_id, bool terminal)
    : name_(std::move(name)), exec_id_(std::move(exec_id)), terminal_(terminal) {
  exited_event_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!exited_event_) throw std::system_error(errno, std::generic_category(), "eventfd for process " + name_);
}

void Process::SetStdio(AgentStdio stdio) {
  std::lock_guard lock(mu_);
  if (terminal_) {
    pty_master_ = std::move(stdio.pty_master);
    SetNonBlocking(pty_master_.get());
    outputs_[0].fd = pty_master_.get();
    outputs_[1].finished = true;  // no separate stderr with a terminal
    auto target = std::make_shared<StdinTarget>();
    target->fd.reset(fcntl(pty_master_.get(), F_DUPFD_CLOEXEC, 3));
    stdin_ = std::move(target);
    return;
  }
  for (int i = 0; i < 2; ++i) {
    outputs_[i].owned = std::move(i == 0 ? stdio.stdout_r : stdio.stderr_r);
    outputs_[i].fd = outputs_[i].owned.get();
    SetNonBlocking(outputs_[i].fd);
    if (outputs_[i].fd < 0) outputs_[i].finished = true;
  }
  if (stdio.stdin_w) {
    SetNonBlocking(stdio.stdin_w.get());
    auto target = std::make_shared<StdinTarget>();
    target->fd = std::move(stdio.stdin_w);
    stdin_ = std::move(target);
  }
}

void Process::MarkStarted() {
  std::lock_guard lock(mu_);
  started_ = true;
  started_ns_ = MonotonicNs();
}

bool Process::started() const {
  std::lock_guard lock(mu_);
  return started_;
}

void Process::OnExit(const ChildExit& exit) {
  {
    std::lock_guard lock(mu_);
    if (exit_) return;
    exit_ = ProcessExit{ExitStatusFromWaitStatus(exit.wait_status), exit.exited_at_unix_nano};
    exited_ns_ = MonotonicNs();
    uint64_t one = 1;
    [[maybe_unused]] auto n = write(exited_event_.get(), &one, sizeof one);
    ReleaseFdsLocked();
  }
  cv_.notify_all();
  // A container's init at info with its run time (started to reaped): the exit
  // path's first step (issue #15); execs at debug (there may be thousands).
  spdlog::log(exec_id_.empty() ? spdlog::level::info : spdlog::level::debug,
              "event=process_exited process={} pid={} status={} run_ms={}", name_, pid(), exit_->exit_status,
              started_ns_ ? FormatMs(exited_ns_ - started_ns_) : std::string("-"));
}

std::optional<ProcessExit> Process::exit() const {
  std::lock_guard lock(mu_);
  return exit_;
}

void Process::ReleaseFdsLocked() {
  for (auto& output : outputs_) {
    if (output.finished && !output.attached && output.owned) {
      output.owned.reset();
      output.fd = -1;
    }
  }
  if (!exit_) return;
  stdin_.reset();  // a writer still holding it finishes with EPIPE/EIO
  // Readers that attach from now on know the process exited without it.
  if (!outputs_[0].attached && !outputs_[1].attached) exited_event_.reset();
  if (pty_master_ && outputs_[0].finished && !outputs_[0].attached) {
    pty_master_.reset();
    outputs_[0].fd = -1;
  }
}

bool Process::OutputsSettledLocked() const {
  for (const auto& output : outputs_)
    if (output.attached && !output.finished) return false;
  return true;
}

std::optional<ProcessExit> Process::Wait(const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (exit_ && OutputsSettledLocked()) {
      if (exec_id_.empty())
        spdlog::info("event=wait_answered process={} after_exit_ms={}", name_, FormatMs(MonotonicNs() - exited_ns_));
      return exit_;
    }
    // The timeout only notices a cancelled RPC; exits and drains notify.
    cv_.wait_for(lock, std::chrono::milliseconds(500));
    if (cancelled && cancelled()) return std::nullopt;
  }
}

bool Process::WaitExitFor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return exit_.has_value(); });
}

void Process::Signal(int signal, Reaper& reaper) {
  auto pin = reaper.PinPids();
  std::lock_guard lock(mu_);
  if (exit_) throw Error(ErrorCode::kNotFound, "process " + name_ + " has exited");
  pid_t target = pid();
  if (target <= 0) throw Error(ErrorCode::kFailedPrecondition, "process " + name_ + " has no pid yet");
  if (kill(target, signal) != 0) {
    int error = errno;
    if (error == ESRCH) throw Error(ErrorCode::kNotFound, "process " + name_ + " has exited");
    if (error == EINVAL) throw Error(ErrorCode::kInvalidArgument, "signal " + std::to_string(signal) + " is invalid");
    throw Error(ErrorCode::kInternal, "kill " + std::to_string(target) + ": " + ErrnoText(error));
  }
}

void Process::SignalQuietly(int signal, Reaper& reaper) noexcept {
  try {
    Signal(signal, reaper);
  } catch (const std::exception&) {
    // Exited already, or never got a pid: nothing left to signal.
  }
}

bool Process::ReadOutput(OutputKind kind, const std::function<bool(std::string&)>& sink,
                         const std::function<bool()>& cancelled, const std::function<bool()>& on_attached) {
  std::string buffer;
  return ReadOutputWith(
      kind, [&](const PumpSource& source) { return PumpOutput(source, buffer, sink, cancelled); }, on_attached);
}

bool Process::ReadOutputWith(OutputKind kind, const OutputPump& pump, const std::function<bool()>& on_attached) {
  Output& output = outputs_[static_cast<int>(kind)];
  PumpSource source;
  {
    std::lock_guard lock(mu_);
    if (output.finished) return true;  // nothing (more) to read
    if (output.attached)
      throw Error(ErrorCode::kFailedPrecondition,
                  std::string(OutputName(kind)) + " of process " + name_ + " already has a reader");
    if (output.fd < 0) throw Error(ErrorCode::kFailedPrecondition, "process " + name_ + " has no stdio yet");
    output.attached = true;
    source.fd = output.fd;
    source.exited = exit_.has_value();
    source.exited_fd = exited_event_.get();
  }
  auto detach = [&](bool finished) {
    {
      std::lock_guard lock(mu_);
      output.attached = false;
      output.finished = output.finished || finished;
      ReleaseFdsLocked();
    }
    cv_.notify_all();
  };
  if (on_attached && !on_attached()) {
    detach(false);
    return false;
  }
  PumpEnd end = pump(source);
  int read_errno = errno;
  bool finished = end == PumpEnd::kEof || end == PumpEnd::kDrainedAfterExit;
  detach(finished || end == PumpEnd::kReadError);
  spdlog::debug("event=output_end process={} stream={} end={}", name_, OutputName(kind), ToString(end));
  switch (end) {
    case PumpEnd::kEof:
    case PumpEnd::kDrainedAfterExit:
      return true;
    case PumpEnd::kSinkClosed:
    case PumpEnd::kCancelled:
      return false;
    case PumpEnd::kReadError:
      throw Error(ErrorCode::kInternal, std::string("read ") + OutputName(kind) + " of " + name_ + ": " + ErrnoText(read_errno));
  }
  return true;
}

void Process::WriteStdin(std::string_view data, const std::function<bool()>& cancelled, uint64_t* written) {
  std::shared_ptr<StdinTarget> target;
  {
    std::lock_guard lock(mu_);
    target = stdin_;
    if (!data.empty()) stdin_last_was_newline_ = data.back() == '\n';
  }
  if (!target)
    throw Error(ErrorCode::kFailedPrecondition, "process " + name_ + " has no open stdin");
  while (!data.empty()) {
    ssize_t n = write(target->fd.get(), data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      *written += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd pfd{target->fd.get(), POLLOUT, 0};
      poll(&pfd, 1, 500);
      if (cancelled && cancelled()) throw Error(ErrorCode::kCancelled, "writer went away");
      continue;
    }
    int error = errno;
    if (error == EPIPE || error == EIO)
      throw Error(ErrorCode::kFailedPrecondition, "stdin of process " + name_ + " is closed (the process no longer reads it)");
    throw Error(ErrorCode::kInternal, "write stdin of " + name_ + ": " + ErrnoText(error));
  }
}

void Process::CloseStdin() {
  std::shared_ptr<StdinTarget> target;
  bool last_was_newline;
  {
    std::lock_guard lock(mu_);
    if (!terminal_) {
      stdin_.reset();  // the write end closes when the last writer lets go
      return;
    }
    target = stdin_;
    last_was_newline = stdin_last_was_newline_;
    stdin_last_was_newline_ = true;
  }
  if (!target) return;
  termios attrs{};
  char veof = 4;  // ^D
  if (tcgetattr(target->fd.get(), &attrs) == 0 && attrs.c_cc[VEOF] != 0) veof = static_cast<char>(attrs.c_cc[VEOF]);
  // VEOF ends input only at the start of a line; a pending partial line needs
  // one VEOF to be delivered and a second one for EOF.
  std::string eof(last_was_newline ? 1 : 2, veof);
  uint64_t written = 0;
  // WriteStdin notes the VEOF as a partial line; after an EOF the next input
  // starts a line, written or not.
  auto at_line_start = [this] {
    std::lock_guard lock(mu_);
    stdin_last_was_newline_ = true;
  };
  try {
    WriteStdin(eof, nullptr, &written);
  } catch (...) {
    at_line_start();
    throw;
  }
  at_line_start();
}

void Process::ResizePty(uint32_t width, uint32_t height) {
  std::lock_guard lock(mu_);
  if (!terminal_) throw Error(ErrorCode::kFailedPrecondition, "process " + name_ + " has no terminal");
  if (!pty_master_) throw Error(ErrorCode::kNotFound, "process " + name_ + " has exited");
  winsize size{};
  size.ws_col = static_cast<unsigned short>(width);
  size.ws_row = static_cast<unsigned short>(height);
  if (ioctl(pty_master_.get(), TIOCSWINSZ, &size) != 0)
    throw Error(ErrorCode::kInternal, "resize pty of " + name_ + ": " + ErrnoText(errno));
}

}  // namespace uvmshim::agent
