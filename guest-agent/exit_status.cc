#include "guest-agent/exit_status.h"

#include <sys/wait.h>

#include <cerrno>

namespace uvmshim::agent {

unsigned ExitStatusFromWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return static_cast<unsigned>(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return 128u + static_cast<unsigned>(WTERMSIG(wait_status));
  return 255;  // stopped/continued are never reported as exits (no WUNTRACED)
}

unsigned ExitStatusForExecErrno(int error) {
  return (error == ENOENT || error == ENOTDIR) ? 127 : 126;
}

}  // namespace uvmshim::agent
