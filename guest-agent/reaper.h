// The one place that reaps children: a thread reading SIGCHLD from a signalfd
// and calling waitpid(-1, WNOHANG) until none is left. SIGCHLD must be blocked
// in every thread (call BlockSigchld() in main() before any thread starts).
//
// Exits go to the callback registered for the pid. A child can exit before its
// spawner learns its pid (the exec path learns the pid of a grandchild over a
// pipe), so an exit nobody watches yet is kept while a spawn that began before
// it is still in progress (SpawnToken), and handed over by Watch(). Other
// exits (orphans re-parented to the agent) are dropped.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "common/unique_fd.h"

namespace uvmshim::agent {

struct ChildExit {
  int wait_status = 0;
  int64_t exited_at_unix_nano = 0;
};

class Reaper {
 public:
  using Callback = std::function<void(const ChildExit&)>;

  // Blocks SIGCHLD in the calling thread (threads created later inherit it).
  static void BlockSigchld();

  Reaper();  // throws std::system_error
  ~Reaper();
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  class SpawnToken {
   public:
    SpawnToken(SpawnToken&& other) noexcept : reaper_(other.reaper_), seq_(other.seq_) { other.reaper_ = nullptr; }
    SpawnToken(const SpawnToken&) = delete;
    SpawnToken& operator=(const SpawnToken&) = delete;
    SpawnToken& operator=(SpawnToken&&) = delete;
    ~SpawnToken();

   private:
    friend class Reaper;
    SpawnToken(Reaper* reaper, uint64_t seq) : reaper_(reaper), seq_(seq) {}
    Reaper* reaper_;
    uint64_t seq_;
  };

  // Take before creating children whose exits are watched; hold until Watch().
  SpawnToken BeginSpawn();

  // Calls `callback` once with the exit of `pid` (a child of this process
  // created after `token` was taken): on the reaper thread, or right here when
  // the child was already reaped.
  void Watch(pid_t pid, Callback callback, const SpawnToken& token);

  // While the returned lock is held no child is reaped, so a pid whose exit
  // was not yet delivered still names that process (safe to kill()).
  std::shared_lock<std::shared_mutex> PinPids();

 private:
  struct Unclaimed {
    ChildExit exit;
    uint64_t seq;  // spawn sequence number current when it was reaped
  };

  void Run();
  void ReapAll();
  void EndSpawn();

  UniqueFd signal_fd_;
  UniqueFd stop_fd_;
  std::shared_mutex pin_mu_;
  std::mutex mu_;  // guards the members below
  std::map<pid_t, Callback> watchers_;
  std::map<pid_t, Unclaimed> unclaimed_;
  uint64_t spawn_seq_ = 0;
  int pending_spawns_ = 0;
  std::thread thread_;
};

}  // namespace uvmshim::agent
