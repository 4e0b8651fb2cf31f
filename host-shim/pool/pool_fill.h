// Starting and ending warm pool VMs: each VM is one detached keeper process
// (uvm-pool-keeper, pool_keeper.h) that outlives whoever started it.
#pragma once

#include <string>
#include <vector>

#include "pool/pool_dir.h"

namespace uvmshim::host::pool {

struct FillLimits {
  unsigned size = 1;               // idle (booting or ready) VMs wanted for the key
  unsigned max_memory_mib = 2048;  // all idle VMs of every key together
  bool snapshots = true;           // restore VMs from the key's memory snapshot (pool_snapshot.h)
};

// Starts keepers until the key has `size` idle VMs, within the memory cap.
// Returns the new VMs' ids (none when full or capped). Serialised per key by
// fill.lock, so concurrent claimers never overshoot. Throws std::runtime_error
// when the keeper cannot be started.
std::vector<std::string> FillPool(const PoolKey& key, const FillLimits& limits);

// Asks every idle VM of the key dir (every key dir when empty) to end;
// claimed VMs are left to their sandboxes. Returns how many were asked.
unsigned DrainPool(const std::filesystem::path& key_dir = {});

// Memory of every idle VM under PoolRoot(), MiB.
unsigned IdleMemoryMib();

// One line to a keeper's control socket, the answer line back ("" when the
// keeper closed without one). Throws std::runtime_error when it cannot connect.
std::string KeeperRequest(const std::filesystem::path& vm_dir, const std::string& line, int timeout_ms = 10000);

}  // namespace uvmshim::host::pool
