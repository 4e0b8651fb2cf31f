// The runtime configuration a sandbox is created with: the isolation mode and
// the UVM's resources and boot files. Read from the TOML file that containerd's
// runtime options name (ctr --runtime-config-path, CRI options.ConfigPath),
// then overridden per container by the OCI annotation io.uvmshim.isolation.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

namespace uvmshim::host {

enum class Isolation { kProcess, kHyperv };
const char* ToString(Isolation isolation);
Isolation ParseIsolation(const std::string& text);  // throws std::invalid_argument

inline constexpr const char* kIsolationAnnotation = "io.uvmshim.isolation";
inline constexpr const char* kVmMemoryAnnotation = "io.uvmshim.vm.memory-mb";
inline constexpr const char* kVmCpusAnnotation = "io.uvmshim.vm.cpus";
inline constexpr const char* kPodMemoryAnnotation = "io.kubernetes.cri.sandbox-memory";
inline constexpr const char* kPodCpuQuotaAnnotation = "io.kubernetes.cri.sandbox-cpu-quota";
inline constexpr const char* kPodCpuPeriodAnnotation = "io.kubernetes.cri.sandbox-cpu-period";
inline constexpr unsigned kMinVmMemoryMb = 64;

// [pool]: warm utility VMs (host-shim/pool/). Off by default: a pool keeps
// VMs (memory) running for sandboxes that do not exist yet and processes that
// outlive every shim, which an operator must choose; off = the cold boot path.
struct PoolConfig {
  bool enabled = false;
  unsigned size = 1;               // idle VMs kept booted per configuration
  unsigned max_memory_mib = 2048;  // cap on the memory of all idle VMs together
  bool snapshot = true;            // refill from a memory snapshot (host-shim/pool/pool_snapshot.h)
};

struct SandboxConfig {
  Isolation isolation = Isolation::kHyperv;
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  // Added to a pod's summed memory (CRI io.kubernetes.cri.sandbox-memory) for
  // the guest kernel and agent.
  unsigned memory_overhead_mb = 128;
  std::filesystem::path kernel;   // empty = <ImagesDir>/vmlinuz
  std::filesystem::path initrd;   // empty = <ImagesDir>/initrd.img
  std::string kernel_cmdline_extra;
  std::chrono::seconds boot_timeout{120};
  bool console_log = true;
  std::string agent_log_level = "info";
  // Deadlines of the shim's agent calls ([agent] call_timeout_seconds,
  // lifecycle_timeout_seconds): see host::AgentDeadlines.
  std::chrono::seconds agent_call_timeout{30};
  std::chrono::seconds agent_lifecycle_timeout{120};
  PoolConfig pool;
};

// Parses the TOML text; unknown keys and wrong types are errors that name the
// key (a typo must not silently fall back to a default).
SandboxConfig ParseSandboxConfig(const std::string& toml_text, const std::string& origin);
SandboxConfig LoadSandboxConfig(const std::filesystem::path& file);
// The TOML text ParseSandboxConfig reads back as `config` (strings escaped):
// how a tool writes a runtime config file (sandbox_config_writer.cc).
std::string FormatSandboxConfig(const SandboxConfig& config);
// Applies io.uvmshim.isolation from the OCI spec's annotations, if present.
void ApplyAnnotations(SandboxConfig& config, const std::map<std::string, std::string>& annotations);

// What a UVM may be given at most: the host's memory and CPUs.
struct HostLimits {
  unsigned memory_mb = 0;
  unsigned cpus = 0;
};
HostLimits CurrentHostLimits();

// Sizes a pod's UVM from its sandbox container's annotations: the pod's
// summed resources (CRI sandbox-memory bytes + memory_overhead_mb, cpu
// quota/period rounded up), never below the configured memory_mb/cpus and
// clamped to `limits`; io.uvmshim.vm.memory-mb / io.uvmshim.vm.cpus override.
// Nonsense values throw std::invalid_argument naming the annotation.
void ApplyPodSizing(SandboxConfig& config, const std::map<std::string, std::string>& annotations,
                    const HostLimits& limits);

}  // namespace uvmshim::host
