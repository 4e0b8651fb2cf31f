#include "guest-agent/reaper.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>

#include <cerrno>
#include <spdlog/spdlog.h>
#include <system_error>

namespace uvmshim::agent {
namespace {

int64_t NowUnixNano() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

void Reaper::BlockSigchld() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Reaper::Reaper() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  // Also block here: callers may have forgotten; threads created before this
  // point would still receive SIGCHLD (default action: ignore, harmless).
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal_fd_.reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) throw std::system_error(errno, std::generic_category(), "reaper: signalfd");
  stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_) throw std::system_error(errno, std::generic_category(), "reaper: eventfd");
  thread_ = std::thread([this] { Run(); });
}

Reaper::~Reaper() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = write(stop_fd_.get(), &one, sizeof one);
  thread_.join();
}

Reaper::SpawnToken::~SpawnToken() {
  if (reaper_) reaper_->EndSpawn();
}

Reaper::SpawnToken Reaper::BeginSpawn() {
  std::lock_guard lock(mu_);
  ++pending_spawns_;
  return SpawnToken(this, ++spawn_seq_);
}

void Reaper::EndSpawn() {
  std::lock_guard lock(mu_);
  if (--pending_spawns_ == 0) unclaimed_.clear();  // nobody can claim them any more
}

void Reaper::Watch(pid_t pid, Callback callback, const SpawnToken& token) {
  ChildExit exit;
  {
    std::lock_guard lock(mu_);
    auto it = unclaimed_.find(pid);
    if (it == unclaimed_.end() || it->second.seq < token.seq_) {
      watchers_[pid] = std::move(callback);
      return;
    }
    exit = it->second.exit;
    unclaimed_.erase(it);
  }
  callback(exit);
}

std::shared_lock<std::shared_mutex> Reaper::PinPids() { return std::shared_lock(pin_mu_); }

void Reaper::Run() {
  ReapAll();  // children that exited before the thread started
  pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::critical("event=reaper_poll_failed error={}", errno);
      return;
    }
    if (fds[1].revents) return;
    signalfd_siginfo info[16];
    while (read(signal_fd_.get(), info, sizeof info) > 0) {
    }
    ReapAll();
  }
}

void Reaper::ReapAll() {
  std::unique_lock pin(pin_mu_);
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);
    if (pid <= 0) return;  // 0: children left but none exited; -1: ECHILD
    ChildExit exit{status, NowUnixNano()};
    Callback callback;
    {
      std::lock_guard lock(mu_);
      auto it = watchers_.find(pid);
      if (it != watchers_.end()) {
        callback = std::move(it->second);
        watchers_.erase(it);
      } else if (pending_spawns_ > 0) {
        unclaimed_[pid] = Unclaimed{exit, spawn_seq_};
      } else {
        spdlog::debug("event=orphan_reaped pid={} status={}", pid, status);
      }
    }
    if (callback) callback(exit);  // under the pin: the pid is not reused yet for killers
  }
}

}  // namespace uvmshim::agent
