#include "guest-agent/reaper.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>

#include <gtest/gtest.h>

#include "guest-agent/exit_status.h"

namespace uvmshim::agent {
namespace {

// The reaper needs SIGCHLD blocked in every thread; gtest's main thread
// created no threads before this runs.
class ReaperTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { Reaper::BlockSigchld(); }
};

TEST_F(ReaperTest, DeliversExitToTheWatcher) {
  Reaper reaper;
  auto token = reaper.BeginSpawn();
  pid_t pid = fork();
  if (pid == 0) _exit(7);
  std::promise<int> status;
  reaper.Watch(pid, [&](const ChildExit& exit) { status.set_value(exit.wait_status); }, token);
  auto future = status.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(ExitStatusFromWaitStatus(future.get()), 7u);
}

TEST_F(ReaperTest, KeepsAnExitThatCameBeforeWatch) {
  Reaper reaper;
  auto token = reaper.BeginSpawn();
  pid_t pid = fork();
  if (pid == 0) _exit(3);
  // Let it exit and be reaped before anyone watches it.
  for (int i = 0; i < 200 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  int got = -1;
  reaper.Watch(pid, [&](const ChildExit& exit) { got = exit.wait_status; }, token);
  EXPECT_EQ(ExitStatusFromWaitStatus(got), 3u);  // delivered synchronously
}

TEST_F(ReaperTest, ReapsOrphansWithoutWatchers) {
  Reaper reaper;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  for (int i = 0; i < 400; ++i) {
    if (kill(pid, 0) != 0) break;  // gone: reaped, not a zombie
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_NE(kill(pid, 0), 0);
}

TEST_F(ReaperTest, ManyConcurrentChildren) {
  Reaper reaper;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  constexpr int kChildren = 50;
  for (int i = 0; i < kChildren; ++i) {
    auto token = reaper.BeginSpawn();
    pid_t pid = fork();
    if (pid == 0) _exit(i);
    reaper.Watch(pid, [&, i](const ChildExit& exit) {
      EXPECT_EQ(ExitStatusFromWaitStatus(exit.wait_status), static_cast<unsigned>(i));
      std::lock_guard lock(mu);
      ++done;
      cv.notify_all();
    }, token);
  }
  std::unique_lock lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == kChildren; }));
}

}  // namespace
}  // namespace uvmshim::agent
