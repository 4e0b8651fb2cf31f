#include "sandbox_config.h"

#include <cpptoml.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <thread>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "toml_reader.h"

namespace uvmshim::host {

const char* ToString(Isolation isolation) {
  return isolation == Isolation::kProcess ? "process" : "hyperv";
}

Isolation ParseIsolation(const std::string& text) {
  if (text == "process") return Isolation::kProcess;
  if (text == "hyperv") return Isolation::kHyperv;
  throw std::invalid_argument(fmt::format("isolation \"{}\": expected process or hyperv", text));
}

SandboxConfig ParseSandboxConfig(const std::string& toml_text, const std::string& origin) {
  const std::shared_ptr<cpptoml::table> root = ParseTomlDocument(toml_text, origin);
  SandboxConfig config;
  RejectUnknown(*root, {"isolation", "uvm", "agent", "pool"}, origin);
  std::string isolation = ToString(config.isolation);
  Read(*root, "isolation", isolation, origin);
  config.isolation = ParseIsolation(isolation);
  if (root->contains("uvm")) {
    auto uvm = root->get_table("uvm");
    const std::string where = origin + " [uvm]";
    if (!uvm) throw std::invalid_argument(where + ": must be a table");
    RejectUnknown(*uvm, {"memory_mb", "memory_overhead_mb", "cpus", "kernel", "initrd", "kernel_cmdline_extra",
                         "boot_timeout_seconds", "console_log"}, where);
    config.memory_mb = ReadPositive(*uvm, "memory_mb", config.memory_mb, where);
    config.cpus = ReadPositive(*uvm, "cpus", config.cpus, where);
    std::int64_t overhead = config.memory_overhead_mb;
    Read(*uvm, "memory_overhead_mb", overhead, where);
    if (overhead < 0 || overhead > (1 << 20))
      throw std::invalid_argument(fmt::format("{}: \"memory_overhead_mb\" = {} is out of range", where, overhead));
    config.memory_overhead_mb = static_cast<unsigned>(overhead);
    std::string path;
    Read(*uvm, "kernel", path, where);
    config.kernel = path;
    path.clear();
    Read(*uvm, "initrd", path, where);
    config.initrd = path;
    Read(*uvm, "kernel_cmdline_extra", config.kernel_cmdline_extra, where);
    config.boot_timeout = std::chrono::seconds(
        ReadPositive(*uvm, "boot_timeout_seconds", config.boot_timeout.count(), where));
    Read(*uvm, "console_log", config.console_log, where);
  }
  if (root->contains("agent")) {
    auto agent = root->get_table("agent");
    const std::string where = origin + " [agent]";
    if (!agent) throw std::invalid_argument(where + ": must be a table");
    RejectUnknown(*agent, {"log_level", "call_timeout_seconds", "lifecycle_timeout_seconds"}, where);
    Read(*agent, "log_level", config.agent_log_level, where);
    config.agent_call_timeout = std::chrono::seconds(
        ReadPositive(*agent, "call_timeout_seconds", config.agent_call_timeout.count(), where));
    config.agent_lifecycle_timeout = std::chrono::seconds(
        ReadPositive(*agent, "lifecycle_timeout_seconds", config.agent_lifecycle_timeout.count(), where));
  }
  if (root->contains("pool")) {
    auto pool = root->get_table("pool");
    const std::string where = origin + " [pool]";
    if (!pool) throw std::invalid_argument(where + ": must be a table");
    RejectUnknown(*pool, {"enabled", "size", "max_memory_mib", "snapshot"}, where);
    Read(*pool, "enabled", config.pool.enabled, where);
    Read(*pool, "snapshot", config.pool.snapshot, where);
    config.pool.size = ReadPositive(*pool, "size", config.pool.size, where);
    config.pool.max_memory_mib = ReadPositive(*pool, "max_memory_mib", config.pool.max_memory_mib, where);
  }
  return config;
}

SandboxConfig LoadSandboxConfig(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(fmt::format("runtime config {}: cannot be read", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return ParseSandboxConfig(text.str(), file.string());
}

void ApplyAnnotations(SandboxConfig& config,
                      const std::map<std::string, std::string>& annotations) {
  if (auto it = annotations.find(kIsolationAnnotation); it != annotations.end()) {
    try {
      config.isolation = ParseIsolation(it->second);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("annotation {}: {}", kIsolationAnnotation, e.what()));
    }
  }
}

HostLimits CurrentHostLimits() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  HostLimits limits;
  limits.memory_mb = static_cast<unsigned>(std::min<std::uint64_t>(
      static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) / (1024 * 1024), 1u << 20));
  limits.cpus = std::max(1U, std::thread::hardware_concurrency());
  return limits;
}

namespace {

// A whole decimal number, or nullopt for anything else ("", "1e3", "-", "12x").
std::optional<std::int64_t> ParseInteger(const std::string& text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> ReadAnnotation(const std::map<std::string, std::string>& annotations,
                                           const char* key, std::int64_t min, std::int64_t max,
                                           const std::string& expected) {
  auto it = annotations.find(key);
  if (it == annotations.end()) return std::nullopt;
  auto value = ParseInteger(it->second);
  if (!value || *value < min || *value > max)
    throw std::invalid_argument(fmt::format("annotation {}=\"{}\": expected {}", key, it->second, expected));
  return value;
}

}  // namespace

void ApplyPodSizing(SandboxConfig& config, const std::map<std::string, std::string>& annotations,
                    const HostLimits& limits) {
  constexpr std::int64_t kMiB = 1024 * 1024;
  constexpr std::int64_t kHuge = std::int64_t{1} << 60;
  // CRI sums the pod's limits; 0 (or absent) means "no limit".
  if (auto bytes = ReadAnnotation(annotations, kPodMemoryAnnotation, 0, kHuge, "a byte count >= 0")) {
    if (*bytes > 0) {
      const std::int64_t wanted = (*bytes + kMiB - 1) / kMiB + config.memory_overhead_mb;
      config.memory_mb = static_cast<unsigned>(std::clamp<std::int64_t>(
          wanted, config.memory_mb, std::max<std::int64_t>(config.memory_mb, limits.memory_mb)));
    }
  }
  auto quota = ReadAnnotation(annotations, kPodCpuQuotaAnnotation, -1, kHuge, "microseconds >= -1");
  auto period = ReadAnnotation(annotations, kPodCpuPeriodAnnotation, 0, 1'000'000,
                               "microseconds in 0..1000000");
  if (quota && period && *quota > 0 && *period > 0) {
    const std::int64_t wanted = (*quota + *period - 1) / *period;
    config.cpus = static_cast<unsigned>(std::clamp<std::int64_t>(
        wanted, config.cpus, std::max<std::int64_t>(config.cpus, limits.cpus)));
  }
  if (auto mb = ReadAnnotation(annotations, kVmMemoryAnnotation, kMinVmMemoryMb, limits.memory_mb,
                               fmt::format("MiB in {}..{} (the host's memory)", kMinVmMemoryMb,
                                           limits.memory_mb)))
    config.memory_mb = static_cast<unsigned>(*mb);
  if (auto cpus = ReadAnnotation(annotations, kVmCpusAnnotation, 1, limits.cpus,
                                 fmt::format("a CPU count in 1..{} (the host's CPUs)", limits.cpus)))
    config.cpus = static_cast<unsigned>(*cpus);
}

}  // namespace uvmshim::host
