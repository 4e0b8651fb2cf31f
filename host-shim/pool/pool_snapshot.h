// Warm pool VMs restored from a memory snapshot (issue #15, item 2): a
// restore reaches a ready agent ~10x faster than a boot under TCG.
//
//   <key dir>/snapshot.bin    the migrated state of a VM whose agent was ready (0600)
//   <key dir>/snapshot.id     what it was made from (SnapshotIdentity): written
//                             last, so a snapshot without it is never used
//   <key dir>/snapshot.lock   one keeper makes the snapshot, the others wait
//
// The snapshot VM boots without the share (QEMU 7.2 cannot migrate
// vhost-user-fs), with guest RAM in a shared memfd and an empty PCIe root
// port; each restored VM gets its share hot-added and the agent mounts it
// where the cold path does. Nothing before the snapshot ran a container or
// saw a secret (the keeper's boot only pings the agent); every claim gives
// the clone its own entropy (reseeding the guest's CRNG), hostname and
// machine id (SetIdentity, pooled_vm.cc).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "pool/pool_dir.h"

namespace uvmshim::uvm {
class QemuVm;
}

namespace uvmshim::host::pool {

// The key's files plus the QEMU binary and this keeper binary (their size
// and mtime): a rebuilt image, QEMU or uvmshim never restores an old state.
std::string SnapshotIdentity(const PoolKey& key);

struct StartedVm {
  std::unique_ptr<uvm::QemuVm> vm;  // agent ready, share mounted at /run/share
  std::string origin;               // "snapshot" or "cold"
};

// Starts the VM a keeper holds for a claim. With `use_snapshots`: restores
// the key's snapshot (made first when there is none: one boot without the
// share); a snapshot that fails to restore, or whose agent or share never
// comes up, is discarded and made again once; if that fails too, a cold
// boot as without snapshots. `spawned(qemu pid)` is called for every QEMU
// started (the keeper records it for its leftovers). Throws when the cold
// boot fails.
StartedVm StartPoolVm(const PoolKey& key, const std::filesystem::path& vm_dir,
                      const std::filesystem::path& share_dir, bool use_snapshots,
                      const std::function<void(pid_t)>& spawned);

}  // namespace uvmshim::host::pool
