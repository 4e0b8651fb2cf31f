#include "shim/stdio_files.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

// A FIFO we also hold a read end of loses its unread bytes when we close it
// before the client opened its own: wait (bounded) until the client took them.
void DrainBeforeClose(int fd) {
  for (int i = 0; i < 250; ++i) {
    int unread = 0;
    if (::ioctl(fd, FIONREAD, &unread) != 0 || unread == 0) return;
    ::usleep(20000);
  }
  spdlog::warn("stdio: no reader took the last output within 5 s");
}

}  // namespace

StdioFiles::StdioFiles(const StdioPaths& paths, const std::string& container_id,
                       const std::string& ns) {
  if (!paths.stdin_path.empty()) {
    // Read+write: the shim's own write end keeps the FIFO from reporting EOF
    // before the client attached; CloseIO ends stdin explicitly.
    int fd = ::open(paths.stdin_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) Fail("open stdin", paths.stdin_path);
    ClearNonBlock(fd);
    stdin_.reset(fd);
  }
  if (paths.stdout_path.starts_with("binary://")) {
    StartLoggingBinary(paths.stdout_path, container_id, ns);
    return;
  }
  if (!paths.stdout_path.empty()) stdout_ = OpenOutput(paths.stdout_path, stdout_holds_read_end_);
  if (!paths.stderr_path.empty() && !paths.terminal) {
    if (paths.stderr_path == paths.stdout_path) {
      stderr_.reset(::fcntl(stdout_.get(), F_DUPFD_CLOEXEC, 3));
    } else {
      stderr_ = OpenOutput(paths.stderr_path, stderr_holds_read_end_);
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
  if (stdout_ && stdout_holds_read_end_) DrainBeforeClose(stdout_.get());
  if (stderr_ && stderr_holds_read_end_) DrainBeforeClose(stderr_.get());
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
