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

struct SandboxConfig {
  Isolation isolation = Isolation::kHyperv;
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  std::filesystem::path kernel;   // empty = <ImagesDir>/vmlinuz
  std::filesystem::path initrd;   // empty = <ImagesDir>/initrd.img
  std::string kernel_cmdline_extra;
  std::chrono::seconds boot_timeout{120};
  bool console_log = true;
  std::string agent_log_level = "info";
};

// Parses the TOML text; unknown keys and wrong types are errors that name the
// key (a typo must not silently fall back to a default).
SandboxConfig ParseSandboxConfig(const std::string& toml_text, const std::string& origin);
SandboxConfig LoadSandboxConfig(const std::filesystem::path& file);
// Applies io.uvmshim.isolation from the OCI spec's annotations, if present.
void ApplyAnnotations(SandboxConfig& config, const std::map<std::string, std::string>& annotations);

}  // namespace uvmshim::host
