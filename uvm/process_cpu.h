// A process's CPU time so far, for boot timelines: under TCG on a loaded host
// the wall clock mostly measures QEMU waiting for a core, its CPU time what
// the guest's work cost (README: boot timeline).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>

namespace uvmshim::uvm {

// User + system time of `pid` (all its threads, exited ones included) from
// /proc/<pid>/stat, in the kernel's clock ticks (10 ms at USER_HZ 100).
// Works on a zombie not yet reaped; nullopt when the process is gone.
std::optional<std::chrono::milliseconds> ProcessCpuTime(pid_t pid);

}  // namespace uvmshim::uvm
