#include "boot_measure.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

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

double BootBareFloorOnce(const BootOptions& options) {
  TempDir dir;
  uvm::QemuVm vm(ConfigFor(options, dir.path(), "bare-floor"), options.qemu);
  vm.Create();
  const auto start = Clock::now();
  vm.Start();
  if (!vm.WaitForConsoleText(kBareFloorMarker, std::chrono::seconds(120)))
    throw uvm::VmError("bare floor: no marker on the console; last lines:\n" + vm.ConsoleTail());
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!vm.WaitForExit(std::chrono::seconds(10))) vm.Terminate();
  return ms;
}

AgentBoot BootAgentOnce(const BootOptions& options) {
  TempDir dir;
  uvm::QemuVm vm(ConfigFor(options, dir.path(), "boot-bench"), options.qemu);
  vm.Create();
  vm.Start();
  vm.WaitAgentReady();
  AgentBoot result;
  result.timeline = vm.timeline();
  std::ifstream console(vm.console_log());
  std::string line;
  while (std::getline(console, line))
    if (line.find("event=pid1_") != std::string::npos || line.find("event=modules_loaded") != std::string::npos ||
        line.find("event=agent_serving") != std::string::npos)
      result.guest_lines += line + "\n";
  vm.Stop(std::chrono::seconds(5));
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
