// QemuVm's setup before anything runs: checking the VmConfig against the
// host (Validate) and turning it into QEMU's command line (BuildCommandLine,
// through the pure builder in uvm/qemu/command_line). Split from qemu_vm.cc,
// which keeps the VM's life (start, readiness, stop ladder, exit).
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "common/ids.h"
#include "uvm/qemu_nic.h"
#include "uvm/qemu/command_line.h"
#include "uvm/qemu/host_probe.h"
#include "uvm/qemu_vm.h"
#include "uvm/qemu_vm_snapshot.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr unsigned kMinMemoryMb = 64;
constexpr const char* kShareTag = "share";

}  // namespace

void QemuVm::Validate() const {
  if (!IsValidId(config_.id)) throw VmError("utility VM: " + IdError("id", config_.id));
  const std::string who = Describe();
  CheckReadableFile("kernel", config_.kernel);
  CheckReadableFile("initrd", config_.initrd);
  if (config_.memory_mb < kMinMemoryMb)
    throw VmError(fmt::format("{}: memory_mb {} is below the minimum of {} MiB", who, config_.memory_mb,
                              kMinMemoryMb));
  if (config_.memory_mb > HostMemoryMb())
    throw VmError(fmt::format("{}: memory_mb {} exceeds the host's {} MiB", who, config_.memory_mb,
                              HostMemoryMb()));
  const unsigned host_cpus = std::max(1U, std::thread::hardware_concurrency());
  if (config_.cpus == 0 || config_.cpus > host_cpus)
    throw VmError(fmt::format("{}: cpus {} out of range (1..{} host CPUs)", who, config_.cpus, host_cpus));
  if (config_.boot_timeout <= milliseconds(0))
    throw VmError(fmt::format("{}: boot_timeout must be positive", who));
  if (config_.state_dir.empty() || !config_.state_dir.is_absolute())
    throw VmError(fmt::format("{}: state_dir \"{}\" must be an absolute path", who, config_.state_dir.string()));
  if (!config_.socket_dir.empty() && !config_.socket_dir.is_absolute())
    throw VmError(fmt::format("{}: socket_dir \"{}\" must be an absolute path", who, config_.socket_dir.string()));
  // Unix socket paths are limited to 107 bytes.
  const auto longest = (SocketDir() / "virtiofs.sock").native().size();
  if (longest > 107)
    throw VmError(fmt::format("{}: socket dir {} is too long for Unix sockets ({} > 107 bytes); "
                              "set a shorter socket_dir", who, SocketDir().string(), longest));
  if (!config_.rootfs_dir.empty())
    throw VmError(fmt::format("{}: rootfs_dir {}: the QEMU backend shares share_dir instead (put the rootfs "
                              "under it)", who, config_.rootfs_dir.string()));
  if (options_.share_hotplug && !config_.share_dir.empty())
    throw VmError(fmt::format("{}: share_hotplug: share_dir must be empty (the share is hot-added)", who));
  if (!options_.incoming_snapshot.empty()) CheckSnapshotPath(options_.incoming_snapshot, who);
  if (!config_.share_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(config_.share_dir, ec))
      throw VmError(fmt::format("{}: share_dir {}: not a directory", who, config_.share_dir.string()));
    if (::access(options_.virtiofsd.c_str(), X_OK) != 0)
      throw VmError(fmt::format("{}: virtiofsd {}: {} (package qemu-system-common)", who,
                                options_.virtiofsd.string(), std::strerror(errno)));
    if (::geteuid() != 0)
      throw VmError(fmt::format("{}: sharing share_dir with virtiofsd needs root", who));
  }
  ValidateNics(config_.nics, who);
  if (!FindInPath(options_.qemu_binary))
    throw VmError(fmt::format("{}: {} not found in PATH (package qemu-system-x86)", who, options_.qemu_binary));
}

fs::path QemuVm::SocketDir() const {
  return config_.socket_dir.empty() ? config_.state_dir : config_.socket_dir;
}

std::vector<std::string> QemuVm::BuildCommandLine() const {
  const fs::path sockets = SocketDir();
  QemuCommandInputs in;
  in.qemu_binary = qemu_path_;
  in.vm_name = "uvmshim-" + config_.id;
  in.machine = options_.machine;
  in.kvm = kvm_;
  if (!options_.bios.empty() && fs::exists(options_.bios)) in.bios = options_.bios;
  in.memory_mb = config_.memory_mb;
  in.cpus = config_.cpus;
  in.kernel = config_.kernel;
  in.initrd = config_.initrd;
  in.kernel_params = {config_.debug_console ? "console=ttyS0" : "console=null", "panic=-1", "quiet",
                      options_.boot_params, "uvm.listen=" + options_.agent_listen,
                      "uvm.log=" + options_.agent_log_level};
  if (!config_.share_dir.empty()) in.kernel_params.push_back(std::string("uvm.share=") + kShareTag);
  // TCG: the guest calibrates its TSC against the PIT on a vCPU a loaded host
  // may starve; a wrong result (350 MHz for the host's 2594 seen at load 15)
  // runs the guest's clock that many times fast for the VM's life (tsc=reliable:
  // no watchdog; the late refinement is dropped when over 1 % off), so gRPC
  // deadlines expired in the guest within seconds (CreateContainer "Deadline
  // Exceeded" 2.7 s into a 120 s call). The HPET counts QEMU's virtual clock,
  // host time, whatever the calibration said. (KVM has kvm-clock.)
  if (!kvm_) in.kernel_params.push_back("clocksource=hpet");
  // Before the extra parameters: a page_reporting_order there wins (the last one does).
  if (options_.free_page_reporting)
    in.kernel_params.push_back(fmt::format("page_reporting.page_reporting_order={}", options_.page_reporting_order));
  if (!config_.kernel_cmdline_extra.empty()) in.kernel_params.push_back(config_.kernel_cmdline_extra);
  in.console_log = console_log();
  in.qmp_socket = sockets / "qmp.sock";
  in.agent_socket = sockets / "agent.sock";
  in.debug_socket = sockets / "debug.sock";
  if (options_.bulk_stdio_port) {
    in.stdio_socket = BulkStdioSocket();
    in.kernel_params.push_back("uvm.stdio=/dev/virtio-ports/" + std::string(kBulkStdioPortName));
  }
  if (!config_.share_dir.empty()) {
    in.virtiofs_socket = sockets / "virtiofs.sock";
    in.share_tag = kShareTag;
  }
  if (!kvm_ && options_.tcg_tb_size_mb > 0) in.accel_properties.push_back(fmt::format("tb-size={}", options_.tcg_tb_size_mb));
  if (options_.free_page_reporting)
    in.extra_devices.push_back({{"-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=on"}});
  if (QemuDevice nics{QemuNicArguments(config_.nics)}; !nics.args.empty()) in.extra_devices.push_back(std::move(nics));
  if (options_.share_hotplug) in.extra_devices.push_back(HotplugShareDevices(config_.memory_mb));
  // SaveSnapshot pauses the VM before saving: without its run state in the
  // stream the restored VM runs at once (qemu_vm_snapshot.cc).
  if (options_.share_hotplug && options_.incoming_snapshot.empty())
    in.extra_devices.push_back({{"-global", "migration.store-global-state=off"}});
  if (!options_.incoming_snapshot.empty())
    in.extra_devices.push_back({{"-incoming", "exec:cat " + options_.incoming_snapshot.string()}});
  return BuildQemuCommandLine(in);
}

}  // namespace uvmshim::uvm
