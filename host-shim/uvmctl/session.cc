#include "uvmctl/session.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace uvmshim::uvmctl {
namespace fs = std::filesystem;

namespace {

std::string MakeFifo(const fs::path& path) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST)
    throw std::runtime_error(fmt::format("mkfifo {}: {}", path.string(), std::strerror(errno)));
  return path.string();
}

void CopyToEnd(int from, int to) {
  std::vector<char> buffer(1 << 16);
  for (;;) {
    ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(to, buffer.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;  // our own stdout is gone: keep draining
      done += w;
    }
  }
}

}  // namespace

FifoStdio::FifoStdio(const fs::path& dir, const std::string& prefix, bool stdin_wanted,
                     bool terminal)
    : stop_(::eventfd(0, EFD_CLOEXEC)) {
  stdout_path_ = MakeFifo(dir / (prefix + "-stdout"));
  if (!terminal) stderr_path_ = MakeFifo(dir / (prefix + "-stderr"));
  if (stdin_wanted) stdin_path_ = MakeFifo(dir / (prefix + "-stdin"));
  // Our read ends exist before the shim opens its write ends, as containerd's do.
  stdout_read_.reset(::open(stdout_path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!stderr_path_.empty())
    stderr_read_.reset(::open(stderr_path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
}

FifoStdio::~FifoStdio() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_.get(), &one, sizeof one);
  if (input_.joinable()) input_.join();
  // Output threads end when the shim closes the FIFOs; if it died, closing
  // our read ends would not wake them, so they are detached only then.
  for (auto& t : outputs_) t.join();
  for (const auto& p : {stdin_path_, stdout_path_, stderr_path_})
    if (!p.empty()) ::unlink(p.c_str());
}

void FifoStdio::Attach(std::function<void()> on_stdin_eof) {
  for (int fd : {stdout_read_.get(), stderr_read_.get()})
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  outputs_.emplace_back([this] { CopyToEnd(stdout_read_.get(), STDOUT_FILENO); });
  if (stderr_read_) outputs_.emplace_back([this] { CopyToEnd(stderr_read_.get(), STDERR_FILENO); });
  if (stdin_path_.empty()) return;
  stdin_write_.reset(::open(stdin_path_.c_str(), O_WRONLY | O_CLOEXEC));
  input_ = std::thread([this, on_stdin_eof = std::move(on_stdin_eof)] {
    std::vector<char> buffer(1 << 16);
    for (;;) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(stdin_write_.get(), buffer.data() + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        done += w;
      }
    }
    stdin_write_.reset();
    on_stdin_eof();
  });
}

void FifoStdio::WaitOutputs() {
  for (auto& t : outputs_) t.join();
  outputs_.clear();
}

}  // namespace uvmshim::uvmctl
