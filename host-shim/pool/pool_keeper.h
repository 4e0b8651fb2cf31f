// uvm-pool-keeper: the one process that owns a warm pool VM (its QEMU,
// virtiofsd, share and sockets) for the VM's whole life.
//
// Boot: the share (a shared mount point), then QEMU until the agent answers;
// the readiness connection to the agent port is closed so the claimer can
// make its own. Then it waits on keeper.sock:
//   - idle: the first CLAIM wins (one accept, then the listener is closed:
//     two claimers never get the same VM; a used VM is never offered again);
//     DRAIN or SIGTERM ends it; if the VM dies idle, the keeper refills the
//     pool (the dead VM is never handed out) and ends.
//   - claimed: the claimer's connection is the VM's lifeline: KILL or its
//     close (the shim ended or was killed) kills the VM; when the VM ends the
//     keeper tells the claimer why and closes.
// At the end it unmounts everything under the VM dir and removes it.
#pragma once

#include <filesystem>

#include "pool/pool_fill.h"

namespace uvmshim::host::pool {

struct KeeperOptions {
  std::filesystem::path vm_dir;  // made by FillPool: key.conf, vm.conf, state
  FillLimits limits;             // for the refill after an idle VM died
};

// Returns the process exit code.
int RunKeeper(const KeeperOptions& options);

}  // namespace uvmshim::host::pool
