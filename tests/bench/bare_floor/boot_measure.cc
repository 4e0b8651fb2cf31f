#include "boot_measure.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "uvm/process_cpu.h"
#include "uvm/qemu_vm.h"

namespace uvmshim::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A private state directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "uvmshim-boot-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw uvm::VmError("mkdtemp " + pattern + " failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

uvm::VmConfig ConfigFor(const BootOptions& options, const fs::path& state_dir, const std::string& id) {
  uvm::VmConfig config;
  config.id = id;
  config.kernel = options.image_dir / "vmlinuz";
  config.initrd = options.image_dir / "initrd.img";
  config.memory_mb = options.memory_mb;
  config.cpus = options.cpus;
  config.state_dir = state_dir / "vm";
  config.boot_timeout = std::chrono::seconds(120);
  return config;
}

}  // namespace

fs::path DefaultBareImageDir() { return UVMSHIM_BARE_IMAGE_DIR; }
fs::path DefaultDebianBareImageDir() { return UVMSHIM_DEBIAN_BARE_IMAGE_DIR; }
fs::path DefaultUvmImageDir() { return UVMSHIM_UVM_IMAGE_DIR; }

BareFloorBoot BootBareFloorOnce(const BootOptions& options) {
  TempDir dir;
  uvm::QemuVm vm(ConfigFor(options, dir.path(), "bare-floor"), options.qemu);
  vm.Create();
  const auto start = Clock::now();
  vm.Start();
  const auto pid = static_cast<pid_t>(vm.vmm_pid());
  // QEMU's CPU time is read around each look at the console: the reading just
  // after the marker was seen, or the last one before it when QEMU has already
  // gone (the floor powers off at its marker).
  std::optional<std::chrono::milliseconds> cpu = uvm::ProcessCpuTime(pid);
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    if (vm.WaitForConsoleText(kBareFloorMarker, std::chrono::milliseconds(0))) break;
    const bool ended = vm.WaitForExit(std::chrono::milliseconds(0)).has_value();
    if (ended && vm.WaitForConsoleText(kBareFloorMarker, std::chrono::milliseconds(0))) break;
    if (ended || Clock::now() >= deadline)
      throw uvm::VmError("bare floor: no marker on the console; last lines:\n" + vm.ConsoleTail());
    if (auto now = uvm::ProcessCpuTime(pid)) cpu = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  BareFloorBoot boot;
  boot.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (auto now = uvm::ProcessCpuTime(pid)) cpu = now;
  boot.vmm_cpu_ms = cpu ? static_cast<double>(cpu->count()) : 0.0;
  if (!vm.WaitForExit(std::chrono::seconds(10))) vm.Terminate();
  return boot;
}

AgentBoot BootAgentOnce(const BootOptions& options) {
  TempDir dir;
  uvm::QemuVm vm(ConfigFor(options, dir.path(), "boot-bench"), options.qemu);
  vm.Create();
  vm.Start();
  vm.WaitAgentReady();
  AgentBoot result;
  // Read at once: the guest idles after its agent answered.
  if (auto cpu = uvm::ProcessCpuTime(static_cast<pid_t>(vm.vmm_pid()))) result.vmm_cpu_ms = static_cast<double>(cpu->count());
  result.timeline = vm.timeline();
  std::ifstream console(vm.console_log());
  std::string line;
  while (std::getline(console, line))
    if (line.find("event=pid1_") != std::string::npos || line.find("event=modules_loaded") != std::string::npos ||
        line.find("event=agent_serving") != std::string::npos)
      result.guest_lines += line + "\n";
  const auto stop_start = Clock::now();
  vm.Stop(std::chrono::seconds(5));
  result.stop_ms = std::chrono::duration<double, std::milli>(Clock::now() - stop_start).count();
  return result;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double Millis(std::chrono::microseconds value) { return static_cast<double>(value.count()) / 1000.0; }

}  // namespace uvmshim::bench
