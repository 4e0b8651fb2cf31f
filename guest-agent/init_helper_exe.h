// Which executable the agent starts as each container's init helper
// (container_init.h): `uvm-init` beside the agent's own executable when it is
// there, else the agent itself (/proc/self/exe __init). uvm-init is the same
// helper code linked alone and statically: no gRPC, protobuf or abseil static
// initialisers, a few pages and relocations instead of a 10 MB agent's. Under
// TCG that start-up was ~190 ms of every create (issue #15).
#pragma once

#include "common/unique_fd.h"

namespace uvmshim::agent {

inline constexpr const char* kInitHelperName = "uvm-init";

// An O_PATH, close-on-exec fd of `<dir of /proc/self/exe>/uvm-init` (numbered
// from 10 up, clear of the fds the helper's parent dup2s into 0-4), for
// execveat(AT_EMPTY_PATH); invalid when there is none (a regular, executable
// file): the caller re-executes the agent. Opened once: a file replaced
// later does not change what runs.
UniqueFd OpenInitHelperBesideAgent();

}  // namespace uvmshim::agent
