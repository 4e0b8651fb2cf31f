// Writes a SandboxConfig as TOML through cpptoml's writer, so paths with
// quotes or backslashes stay intact (a hand-formatted file would break them).
#include <cpptoml.h>

#include <cstdint>
#include <sstream>

#include "sandbox_config.h"

namespace uvmshim::host {

std::string FormatSandboxConfig(const SandboxConfig& config) {
  auto root = cpptoml::make_table();
  root->insert("isolation", std::string(ToString(config.isolation)));

  auto uvm = cpptoml::make_table();
  uvm->insert("memory_mb", static_cast<std::int64_t>(config.memory_mb));
  uvm->insert("memory_overhead_mb", static_cast<std::int64_t>(config.memory_overhead_mb));
  uvm->insert("cpus", static_cast<std::int64_t>(config.cpus));
  if (!config.kernel.empty()) uvm->insert("kernel", config.kernel.string());
  if (!config.initrd.empty()) uvm->insert("initrd", config.initrd.string());
  if (!config.kernel_cmdline_extra.empty()) uvm->insert("kernel_cmdline_extra", config.kernel_cmdline_extra);
  uvm->insert("boot_timeout_seconds", static_cast<std::int64_t>(config.boot_timeout.count()));
  uvm->insert("console_log", config.console_log);
  root->insert("uvm", uvm);

  auto agent = cpptoml::make_table();
  agent->insert("log_level", config.agent_log_level);
  agent->insert("call_timeout_seconds", static_cast<std::int64_t>(config.agent_call_timeout.count()));
  agent->insert("lifecycle_timeout_seconds", static_cast<std::int64_t>(config.agent_lifecycle_timeout.count()));
  root->insert("agent", agent);

  auto pool = cpptoml::make_table();
  pool->insert("enabled", config.pool.enabled);
  pool->insert("size", static_cast<std::int64_t>(config.pool.size));
  pool->insert("max_memory_mib", static_cast<std::int64_t>(config.pool.max_memory_mib));
  pool->insert("snapshot", config.pool.snapshot);
  root->insert("pool", pool);

  std::ostringstream text;
  text << *root;
  return text.str();
}

}  // namespace uvmshim::host
