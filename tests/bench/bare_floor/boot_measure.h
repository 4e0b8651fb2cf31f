// Boot measurements shared by `measure` (the bare floor) and uvm-boot-bench:
// both boot through QemuVm, so the QEMU command line is the same.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "uvm/qemu_vm.h"
#include "uvm/utility_vm.h"

namespace uvmshim::bench {

inline constexpr const char* kBareFloorMarker = "UVMSHIM-BARE-FLOOR-READY";

std::filesystem::path DefaultBareImageDir();
std::filesystem::path DefaultDebianBareImageDir();  // the same /init on Debian's kernel
std::filesystem::path DefaultUvmImageDir();

struct BootOptions {
  std::filesystem::path image_dir;
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  uvm::QemuOptions qemu;  // e.g. tcg_tb_size_mb, to measure what a QEMU option costs
};

struct BareFloorBoot {
  double ms = 0;          // QemuVm::Start() to the marker on the serial console
  double vmm_cpu_ms = 0;  // QEMU's CPU time when the marker was seen (10 ms ticks)
};
// Boots the bare floor to its marker. Throws uvm::VmError when it does not appear.
BareFloorBoot BootBareFloorOnce(const BootOptions& options);

struct AgentBoot {
  uvm::BootTimeline timeline;
  std::string guest_lines;  // the agent's pid1_* log lines (guest-side times)
  double vmm_cpu_ms = 0;    // QEMU's CPU time once the agent answered (10 ms ticks)
  double stop_ms = 0;       // QemuVm::Stop: Shutdown answered, the guest's power-off, QEMU's exit
};
// Boots the real image to a ready agent, then stops the VM.
AgentBoot BootAgentOnce(const BootOptions& options);

double Median(std::vector<double> values);
double Millis(std::chrono::microseconds value);

}  // namespace uvmshim::bench
