// `exec`: runs a process in a running container. With --detach it forks an
// exec monitor (the process in --pid-file, a descendant of the caller) that
// hands its stdio (or a pty sent over --console-socket) to the container's
// monitor, forwards the signals it gets and exits with the process's status.
#pragma once

#include "runc/cli.h"

namespace uvmshim::runc {

int ExecCommand(const CommandLine& cl);

}  // namespace uvmshim::runc
