// CPU priority of a warm pool VM (issue #15). An idle VM boots in the
// background, often while a claimed VM runs its container on the same cores
// (a claim starts the refill at once): under TCG a boot takes a whole core for
// seconds. So keepers boot at a lower priority (nice + kBootNiceIncrement) and
// return to the priority of whoever started them when claimed, taking their
// QEMU and virtiofsd along.
#pragma once

#include <sys/types.h>

namespace uvmshim::host::pool {

inline constexpr int kBootNiceIncrement = 10;

// The nice value to return to at claim: the caller's (before the increment).
int CurrentNice();
// In the keeper's child after fork (async-signal-safe): lowers its priority.
void LowerPriorityForBoot() noexcept;
// In the keeper at claim: sets `nice` on itself and its child processes
// (QEMU, virtiofsd). Failures are logged, never thrown: a claim must not
// fail over priority.
void RestorePriority(int nice);

}  // namespace uvmshim::host::pool
