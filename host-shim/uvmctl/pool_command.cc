#include "uvmctl/pool_command.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "pool/pool_dir.h"
#include "pool/pool_fill.h"
#include "sandbox_config.h"

namespace uvmshim::uvmctl {
namespace fs = std::filesystem;
using namespace host::pool;

namespace {

// VmRSS of a process in MiB ("-" when it is gone).
std::string RssMib(pid_t pid) {
  if (pid <= 0) return "-";
  const std::string status = ReadSmallFile(fmt::format("/proc/{}/status", pid));
  const auto at = status.find("VmRSS:");
  if (at == std::string::npos) return "-";
  return fmt::format("{:.1f}", std::strtod(status.c_str() + at + 6, nullptr) / 1024.0);
}

int Status() {
  std::printf("%-16s %-12s %-8s %-10s %-8s %s\n", "POOL", "VM", "STATE", "MEMORY_MB", "QEMU", "QEMU_RSS_MIB");
  for (const auto& key_dir : ListKeyDirs()) {
    for (const auto& vm : ListVms(key_dir)) {
      const char* state = vm.keeper_alive || vm.keeper_pid == 0 ? ToString(vm.state) : "dead";
      std::printf("%-16s %-12s %-8s %-10u %-8d %s\n", key_dir.filename().c_str(), vm.id.c_str(), state,
                  vm.memory_mb, vm.qemu_pid, RssMib(vm.qemu_pid).c_str());
    }
  }
  return 0;
}

int Fill(const PoolOptions& options) {
  host::SandboxConfig config = options.config.empty() ? host::SandboxConfig{} : host::LoadSandboxConfig(options.config);
  const PoolKey key = KeyFor(config);
  FillLimits limits{options.size.value_or(config.pool.size), config.pool.max_memory_mib, config.pool.snapshot};
  const auto started = FillPool(key, limits);
  std::printf("pool %s: started %zu VM(s)\n", key.Hash().c_str(), started.size());
  if (!options.wait) return 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.wait_seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    unsigned ready = 0, booting = 0;
    for (const auto& vm : ListVms(KeyDir(key))) {
      // A keeper that has not written its pid yet is still starting.
      if (!vm.keeper_alive && vm.keeper_pid != 0) continue;
      ready += vm.state == VmState::kReady;
      booting += vm.state == VmState::kBooting;
    }
    if (booting == 0) {
      std::printf("pool %s: %u VM(s) ready\n", key.Hash().c_str(), ready);
      return ready >= limits.size ? 0 : 1;
    }
    // The keepers write their state files; no event to wait on across processes.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::fprintf(stderr, "uvmctl: pool fill: VMs still booting after %u s\n", options.wait_seconds);
  return 1;
}

}  // namespace

CLI::App* AddPoolCommand(CLI::App& app, PoolOptions& options) {
  auto* cmd = app.add_subcommand("pool", "the warm utility VM pool: status (default), fill, drain");
  cmd->add_option("action", options.action, "status, fill or drain")->check(CLI::IsMember({"status", "fill", "drain"}));
  cmd->add_option("--config", options.config, "runtime TOML naming the configuration (fill)");
  cmd->add_option("--size", options.size, "idle VMs wanted (fill; default: [pool] size)");
  cmd->add_flag("--wait", options.wait, "fill: return once the VMs are ready");
  cmd->add_option("--wait-seconds", options.wait_seconds, "fill --wait: give up after this long");
  return cmd;
}

int RunPool(const PoolOptions& options) {
  if (options.action == "fill") return Fill(options);
  if (options.action == "drain") {
    std::printf("asked %u idle VM(s) to end\n", DrainPool());
    return 0;
  }
  return Status();
}

}  // namespace uvmshim::uvmctl
