#include "guest-agent/exit_status.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

namespace uvmshim::agent {
namespace {

int WaitStatusOf(void (*child)()) {
  pid_t pid = fork();
  if (pid == 0) {
    child();
    _exit(99);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(ExitStatus, ExitCodeIsReportedAsIs) {
  EXPECT_EQ(ExitStatusFromWaitStatus(WaitStatusOf([] { _exit(0); })), 0u);
  EXPECT_EQ(ExitStatusFromWaitStatus(WaitStatusOf([] { _exit(3); })), 3u);
  EXPECT_EQ(ExitStatusFromWaitStatus(WaitStatusOf([] { _exit(255); })), 255u);
}

TEST(ExitStatus, SignalIs128PlusN) {
  EXPECT_EQ(ExitStatusFromWaitStatus(WaitStatusOf([] { raise(SIGKILL); })), 137u);
  EXPECT_EQ(ExitStatusFromWaitStatus(WaitStatusOf([] {
              signal(SIGTERM, SIG_DFL);
              raise(SIGTERM);
            })),
            143u);
}

TEST(ExitStatus, ExecErrnoMapsLikeShells) {
  EXPECT_EQ(ExitStatusForExecErrno(ENOENT), 127u);
  EXPECT_EQ(ExitStatusForExecErrno(ENOTDIR), 127u);
  EXPECT_EQ(ExitStatusForExecErrno(EACCES), 126u);
  EXPECT_EQ(ExitStatusForExecErrno(ENOEXEC), 126u);
}

}  // namespace
}  // namespace uvmshim::agent
