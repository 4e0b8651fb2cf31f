#include "uvm/pid_watch.h"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace uvmshim::uvm {
namespace {

constexpr int kVmmGraceMs = 2000;

int PidFd(pid_t pid) { return pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1; }

}  // namespace

void WaitVmmWatchingHelper(pid_t vmm, pid_t helper, const std::function<void()>& on_helper_exit) {
  const int vmm_fd = PidFd(vmm);
  if (vmm_fd < 0) return;
  int helper_fd = PidFd(helper);
  for (;;) {
    pollfd fds[2] = {{vmm_fd, POLLIN, 0}, {helper_fd, POLLIN, 0}};
    if (::poll(fds, helper_fd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    if (helper_fd >= 0 && fds[1].revents) {
      ::close(helper_fd);
      helper_fd = -1;
      // On a normal power-off the VMM closes the share first, the helper
      // exits, and the VMM follows at once: not a failure.
      pollfd vmm_only{vmm_fd, POLLIN, 0};
      if (::poll(&vmm_only, 1, kVmmGraceMs) > 0) break;
      on_helper_exit();
    }
  }
  if (helper_fd >= 0) ::close(helper_fd);
  ::close(vmm_fd);
}

}  // namespace uvmshim::uvm
