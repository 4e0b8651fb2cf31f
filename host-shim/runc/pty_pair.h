// A host pty for a container started with --console-socket: the master goes
// to the caller, the monitor relays the slave side to the agent's pty (which
// does the line discipline: the host side is raw, so nothing is processed twice).
#pragma once

#include <filesystem>
#include <utility>

#include "common/unique_fd.h"

namespace uvmshim::runc {

struct PtyPair {
  UniqueFd master;
  UniqueFd slave;
};

// Throws std::runtime_error.
PtyPair OpenRawPty();
// The --console-socket hand-over of `create` and `exec`: a raw pty whose
// slave becomes this process's controlling terminal and whose master goes to
// the caller over `console_socket`. Returns the pair with the slave only.
PtyPair HandOverConsole(const std::filesystem::path& console_socket);
// Makes the slave this process's controlling terminal (after setsid) so that
// the caller's resizes of the master arrive as SIGWINCH.
void AcquireControllingTerminal(int slave_fd);
// Points stdin, stdout and stderr at /dev/null. A monitor whose stdio is not
// the container's (a pty carries that) must not hold the caller's pipes:
// runc's callers read those to EOF before they consider `create` done.
void DetachStdio();
// {columns, rows} of the pty; {0, 0} when unknown.
std::pair<unsigned, unsigned> WindowSize(int fd);

}  // namespace uvmshim::runc
