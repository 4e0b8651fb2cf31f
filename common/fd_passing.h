// Descriptors passed over a Unix socket (SCM_RIGHTS): the agent's spawn sync
// (guest-agent/spawn.cc, called between fork and exec) and uvm-runc's control
// channel and --console-socket (host-shim/runc/control_channel.cc).
// POSIX only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "common/unique_fd.h"

namespace uvmshim {

// More than any caller passes in one message (stdio: 3, a pty: 1).
inline constexpr std::size_t kMaxPassedFds = 4;

// One sendmsg(MSG_NOSIGNAL) of `size` bytes carrying `fd_count` descriptors,
// retried on EINTR. Returns what sendmsg returns (-1 with errno; EINVAL for
// more than kMaxPassedFds). Async-signal-safe: no allocation.
ssize_t SendWithFds(int socket, const void* data, std::size_t size, const int* fds, std::size_t fd_count) noexcept;

struct Received {
  ssize_t bytes = 0;           // 0 at end of stream, -1 with errno
  bool truncated = false;      // data or descriptors did not fit
  std::vector<UniqueFd> fds;   // close-on-exec, owned
};

// One recvmsg(MSG_CMSG_CLOEXEC) into `data`, retried on EINTR; every
// descriptor that arrived is returned (owned), even with an error after it.
Received ReceiveWithFds(int socket, void* data, std::size_t size);

}  // namespace uvmshim
