// Exit statuses as shells report them.
#pragma once

namespace uvmshim::agent {

// The exit code, or 128+N when the process was killed by signal N.
unsigned ExitStatusFromWaitStatus(int wait_status);

// What the exec of a user command failed with, as a shell's exit status:
// 127 when the command does not exist, 126 when it cannot be executed.
unsigned ExitStatusForExecErrno(int error);

}  // namespace uvmshim::agent
