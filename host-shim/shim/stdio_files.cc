#include "shim/stdio_files.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <vector>

namespace uvmshim::shim {
namespace {


[[noreturn]] void Fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

void ClearNonBlock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK); }

// The write end of an output FIFO. The client opened its read end before
// Create; if it has not (ENXIO), hold a read end ourselves so the process
// never gets EPIPE, as a reader may still come.
UniqueFd OpenOutputFifo(const std::string& path, bool& holds_read_end) {
  int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  holds_read_end = false;
  if (fd < 0 && errno == ENXIO) {
    fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    holds_read_end = fd >= 0;
    spdlog::debug("stdio {}: no reader yet, holding the FIFO open", path);
  }
  if (fd < 0) Fail("open stdio", path);
  ClearNonBlock(fd);
  return UniqueFd(fd);
}

std::string FifoPathOf(const std::string& uri) { return uri.starts_with("fifo://") ? uri.substr(7) : uri; }

UniqueFd OpenOutput(const std::string& uri, bool& holds_read_end) {
  holds_read_end = false;
  if (uri.starts_with("file://")) {
    std::string path = uri.substr(7);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) Fail("open stdio", path);
    return UniqueFd(fd);
  }
  std::string path = uri.starts_with("fifo://") ? uri.substr(7) : uri;
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0 && !S_ISFIFO(st.st_mode)) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) Fail("open stdio", path);
    return UniqueFd(fd);
  }
  return OpenOutputFifo(path, holds_read_end);
}

// The bytes still in an output FIFO when the process's output ends are lost
// in two ways if we just close it:
//  - we hold its only read end (no client reader came yet): closing drops them;
//  - the client's reader is open in the kernel but not yet in the client's own
//    books. containerd's fifo package opens in a goroutine and marks the FIFO
//    open only after open(2) returned; a Delete that comes first (ctr exec:
//    exit reported -> DeleteProcess -> cancel) closes it unread. This was the
//    rare whole-output loss of short execs under load (exit 0, all of an output
//    under 64 KiB gone, 2 in 3000 execs).
// A client reads only once its reader is fully open, so an empty FIFO proves
// it has everything. So the exit waits until the FIFO is drained: we keep a
// write end only (the bytes stay while any end is open), woken by inotify
// when a reader opens, reads or closes. A client that takes nothing within
// kDrainWait gets EOF after the bytes if it still holds the FIFO; a FIFO
// nobody ever opened loses them (logged).
constexpr int kDrainWaitMs = 30'000;
constexpr int kRecheckMs = 100;  // bound on a missed event (no inotify: the only wake)

int UnreadBytes(int fd) {
  int unread = 0;
  return ::ioctl(fd, FIONREAD, &unread) == 0 ? unread : 0;
}

void CloseFifoWhenDrained(UniqueFd& fd, const std::string& path, bool holds_read_end) {
  if (UnreadBytes(fd.get()) == 0) {
    fd.reset();
    return;
  }
  UniqueFd events(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (events && ::inotify_add_watch(events.get(), path.c_str(), IN_OPEN | IN_ACCESS | IN_CLOSE_NOWRITE) < 0)
    events.reset();
  if (holds_read_end) {
    UniqueFd writer(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));  // we are a reader: succeeds
    if (!writer) {
      spdlog::warn("stdio {}: reopening write-only: {}: {} bytes of output dropped", path, std::strerror(errno),
                   UnreadBytes(fd.get()));
      fd.reset();
      return;
    }
    fd = std::move(writer);  // our read end goes; the bytes stay with the write end
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDrainWaitMs);
  // A reader was there when we opened write-only; else we wait for one to come.
  bool reader_seen = !holds_read_end;
  int unread = 0;
  while ((unread = UnreadBytes(fd.get())) > 0) {
    {
      UniqueFd probe(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));  // succeeds while a reader has it
      if (probe) {
        reader_seen = true;
      } else if (reader_seen) {
        // The client closed its reader (ctr run -d, a client that went away): nobody takes the rest.
        spdlog::debug("stdio {}: the reader closed with {} bytes unread", path, unread);
        break;
      }
    }
    char buffer[4096];  // the probe's own open/close events: drop them, or they would wake us at once
    while (events && ::read(events.get(), buffer, sizeof buffer) > 0) {
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (reader_seen)
        spdlog::warn("stdio {}: the reader took nothing of the last {} bytes within {} ms; closing (they stay "
                     "readable)", path, unread, kDrainWaitMs);
      else
        spdlog::warn("stdio {}: no reader opened it within {} ms: {} bytes of output dropped", path, kDrainWaitMs,
                     unread);
      break;
    }
    pollfd p{events.get(), POLLIN, 0};
    ::poll(&p, events ? 1 : 0, static_cast<int>(std::min<long>(left.count(), kRecheckMs)));
  }
  fd.reset();
}

bool IsFifo(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

}  // namespace

StdioFiles::StdioFiles(const StdioPaths& paths, const std::string& container_id,
                       const std::string& ns) {
  if (!paths.stdin_path.empty()) {
    // Read-only, as runc's shim: EOF reaches the process when the client
    // closes its write end (`echo x | ctr task exec ...` sends no CloseIO; a
    // read-write open of our own hung such execs forever). Before any client
    // writer came, poll() reports nothing (no POLLHUP until a writer has come
    // and gone), so the relay, which polls before it reads, never takes that
    // for EOF. CloseIO still ends stdin explicitly.
    int fd = ::open(paths.stdin_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) Fail("open stdin", paths.stdin_path);
    ClearNonBlock(fd);
    stdin_.reset(fd);
  }
  if (paths.stdout_path.starts_with("binary://")) {
    StartLoggingBinary(paths.stdout_path, container_id, ns);
    return;
  }
  if (!paths.stdout_path.empty()) {
    stdout_ = OpenOutput(paths.stdout_path, stdout_holds_read_end_);
    if (IsFifo(stdout_.get())) stdout_fifo_ = FifoPathOf(paths.stdout_path);
  }
  if (!paths.stderr_path.empty() && !paths.terminal) {
    if (paths.stderr_path == paths.stdout_path) {
      stderr_.reset(::fcntl(stdout_.get(), F_DUPFD_CLOEXEC, 3));
    } else {
      stderr_ = OpenOutput(paths.stderr_path, stderr_holds_read_end_);
      if (IsFifo(stderr_.get())) stderr_fifo_ = FifoPathOf(paths.stderr_path);
    }
  }
}

// containerd's logging-binary contract: the binary gets the container's
// stdout as fd 3 and stderr as fd 4, and closes fd 5 once it is ready.
void StdioFiles::StartLoggingBinary(const std::string& uri, const std::string& container_id,
                                    const std::string& ns) {
  std::string rest = uri.substr(std::string("binary://").size());
  std::string path = rest.substr(0, rest.find('?'));
  std::vector<std::string> args = {path};
  if (auto q = rest.find('?'); q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    std::size_t start = 0;
    while (start <= query.size()) {
      auto amp = query.find('&', start);
      std::string kv = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      if (!kv.empty()) {
        auto eq = kv.find('=');
        args.push_back(eq == std::string::npos ? kv : kv.substr(0, eq));
        if (eq != std::string::npos && eq + 1 < kv.size()) args.push_back(kv.substr(eq + 1));
      }
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
  }
  int out[2], err[2], ready[2];
  if (::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC) || ::pipe2(ready, O_CLOEXEC))
    Fail("pipe for logging binary", path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[0], 3);
  posix_spawn_file_actions_adddup2(&actions, err[0], 4);
  posix_spawn_file_actions_adddup2(&actions, ready[1], 5);
  std::vector<std::string> env_strings = {"CONTAINER_ID=" + container_id,
                                          "CONTAINER_NAMESPACE=" + ns};
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawn(&logger_pid_, path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[0]);
  ::close(err[0]);
  ::close(ready[1]);
  stdout_.reset(out[1]);
  stderr_.reset(err[1]);
  if (rc != 0) {
    ::close(ready[0]);
    errno = rc;
    Fail("start logging binary", path);
  }
  char byte;
  while (::read(ready[0], &byte, 1) > 0) {
  }
  ::close(ready[0]);
}

void StdioFiles::CloseOutputs() {
  if (stdout_ && !stdout_fifo_.empty()) CloseFifoWhenDrained(stdout_, stdout_fifo_, stdout_holds_read_end_);
  if (stderr_ && !stderr_fifo_.empty()) CloseFifoWhenDrained(stderr_, stderr_fifo_, stderr_holds_read_end_);
  stdout_.reset();
  stderr_.reset();
}

StdioFiles::~StdioFiles() {
  CloseOutputs();
  stdin_.reset();
  if (logger_pid_ > 0) {
    // The binary ends once its input closes; don't let it linger past that.
    int status = 0;
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(logger_pid_, &status, WNOHANG) == logger_pid_) return;
      ::usleep(20000);
    }
    ::kill(logger_pid_, SIGKILL);
    ::waitpid(logger_pid_, &status, 0);
  }
}

}  // namespace uvmshim::shim
