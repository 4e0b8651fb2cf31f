// `uvmctl pool [status|fill|drain]`: the warm utility VM pool (host-shim/pool/).
//   status  one line per pooled VM: key, id, state, memory, QEMU pid and RSS
//   fill    boots VMs until the configuration's pool holds --size idle VMs
//           (--config: a runtime TOML; --wait: until they are ready)
//   drain   ends every idle VM (claimed ones stay with their sandboxes)
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <optional>
#include <string>

namespace uvmshim::uvmctl {

struct PoolOptions {
  std::string action = "status";
  std::filesystem::path config;  // runtime TOML; empty = defaults
  std::optional<unsigned> size;
  bool wait = false;
  unsigned wait_seconds = 600;
};

CLI::App* AddPoolCommand(CLI::App& app, PoolOptions& options);
int RunPool(const PoolOptions& options);

}  // namespace uvmshim::uvmctl
