// The runtimes the ctr-level e2e cases run against, and how each one is selected
// on the `ctr run` command line.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "e2e_support.h"

namespace uvmshim::e2e {

inline constexpr const char* kRuncRuntime = "io.containerd.runc.v2";
inline constexpr const char* kUvmRuntime = "io.containerd.uvm.v1";
inline constexpr const char* kIsolationAnnotation = "io.uvmshim.isolation";

enum class Isolation { kNone, kProcess, kHyperv };
// How the isolation mode reaches the shim.
enum class ModeSelector {
  kNone,          // runc
  kAnnotation,    // ctr run --annotation io.uvmshim.isolation=MODE
  kConfigFile,    // ctr run --runtime-config-path FILE, FILE has `isolation = "MODE"`
};

struct RuntimeCase {
  std::string name;  // test-name suffix
  std::string runtime;
  Isolation isolation = Isolation::kNone;
  ModeSelector selector = ModeSelector::kNone;

  bool is_uvm() const { return runtime == kUvmRuntime; }
  bool is_hyperv() const { return isolation == Isolation::kHyperv; }
  std::string mode() const {
    return isolation == Isolation::kProcess ? "process" : isolation == Isolation::kHyperv ? "hyperv" : "";
  }
  // Generous for TCG boots here (no KVM), tight enough to catch hangs.
  std::chrono::milliseconds op_timeout() const { return is_hyperv() ? 180s : 60s; }
};

inline std::ostream& operator<<(std::ostream& os, const RuntimeCase& c) { return os << c.name; }

inline std::vector<RuntimeCase> AllRuntimeCases() {
  return {
      {"runc", kRuncRuntime, Isolation::kNone, ModeSelector::kNone},
      {"uvm_process_annotation", kUvmRuntime, Isolation::kProcess, ModeSelector::kAnnotation},
      {"uvm_process_configfile", kUvmRuntime, Isolation::kProcess, ModeSelector::kConfigFile},
      {"uvm_hyperv_annotation", kUvmRuntime, Isolation::kHyperv, ModeSelector::kAnnotation},
      // hyperv selected by a config file goes through the same selection code as
      // process selected by one; it runs in the hyperv-only suite to save boots.
  };
}

// Why a case cannot run on this build (shim or boot files missing), or nullopt.
inline std::optional<std::string> MissingPrerequisite(const RuntimeCase& c) {
  if (!c.is_uvm()) return std::nullopt;
  if (!UvmShimBinary()) {
    return "containerd-shim-uvm-v1 is not built yet (looked for " +
           (BuildDir() / "bin" / "containerd-shim-uvm-v1").string() + ")";
  }
  if (c.is_hyperv() && !UvmBootFilesDir()) {
    return "UVM boot files are not built yet (need vmlinuz and initrd.img in " +
           (BuildDir() / "images").string() + " or $UVMSHIM_IMAGES)";
  }
  return std::nullopt;
}

// `ctr run` flags that select the runtime and mode. The config file is written into
// `config_dir` (the env's temp dir) when the case needs one.
inline std::vector<std::string> RuntimeFlags(const RuntimeCase& c, const std::filesystem::path& config_dir) {
  std::vector<std::string> flags{"--runtime", c.runtime};
  if (c.selector == ModeSelector::kAnnotation) {
    flags.push_back("--annotation");
    flags.push_back(std::string(kIsolationAnnotation) + "=" + c.mode());
  } else if (c.selector == ModeSelector::kConfigFile) {
    auto file = config_dir / ("uvmshim-" + c.mode() + ".toml");
    if (!std::filesystem::exists(file)) {
      std::ofstream(file) << "# uvm shim runtime options (ctr --runtime-config-path)\n"
                          << "isolation = \"" << c.mode() << "\"\n";
    }
    flags.push_back("--runtime-config-path");
    flags.push_back(file.string());
  }
  return flags;
}

}  // namespace uvmshim::e2e
