// The claim side of the warm pool: a sandbox takes a booted VM of its
// configuration instead of booting one (host-shim/vm_agent_host.cc).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "pool/pool_dir.h"
#include "uvm/utility_vm.h"

namespace uvmshim::host {
struct PoolConfig;
}

namespace uvmshim::host::pool {

struct ClaimedVm {
  // A UtilityVm whose Create/Start are no-ops; WaitAgentReady connects to the
  // agent and gives the VM its identity (fresh entropy, hostname = sandbox
  // id, a new machine id). Destroying it, or Terminate(), ends the VM.
  std::unique_ptr<uvm::UtilityVm> vm;
  std::filesystem::path share_dir;  // the VM's share (SandboxShare::Adopt)
};

// Claims a ready VM of `key` (nullopt when none is ready: the caller boots
// one as before) and then refills the pool in the background. Never throws
// for pool trouble: a broken pool means a cold boot, logged.
std::optional<ClaimedVm> ClaimWarmVm(const PoolKey& key, const PoolConfig& config, const std::string& sandbox_id);

}  // namespace uvmshim::host::pool
