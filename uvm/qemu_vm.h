// UtilityVm on a Linux host: one qemu-system-x86_64 process per VM (KVM when
// /dev/kvm can be opened, TCG otherwise), booting the uvmshim kernel and
// initrd (uvm-agent as PID 1).
//
// Everything lives in VmConfig::state_dir (created 0700 if missing):
//   console.log   the guest's serial console (kernel + agent log)
//   qemu.log      QEMU's own stdout/stderr
//   qmp.sock      QEMU machine protocol (control)
//   agent.sock    virtio-serial port "agent": gRPC to the agent
//   debug.sock    virtio-serial port "debug": a second agent connection
//   virtiofs.sock virtiofsd.log   when VmConfig::share_dir is set
// Sockets are removed when the VM has ended; logs stay for inspection.
//
// The share: VmConfig::share_dir is shared live with one virtiofsd (QEMU's,
// needs root; tag "share", cache=auto without writeback, so a write from the
// guest is on the host when the call returns) and mounted by the guest's PID 1
// at kGuestSharePath ("/run/share"). virtiofsd's own mount namespace is a
// slave of the host's, so mounts the host adds under a shared share_dir after
// the start (a container joining the pod) are visible through it.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/process/child.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm {

class QmpClient;

// QEMU specifics; the defaults are what was measured fastest on Debian 12.
struct QemuOptions {
  std::string qemu_binary = "qemu-system-x86_64";      // searched in PATH
  std::filesystem::path bios = "/usr/share/qemu/qboot.rom";  // SeaBIOS if absent
  std::filesystem::path virtiofsd = "/usr/lib/qemu/virtiofsd";
  // q35 without its built-in AHCI (SATA) controller: the guest's disks are
  // virtio, and the controller's state cost QEMU 1.6 MiB of anonymous memory
  // per VM (issue #13; an idle QEMU paused before boot: 9.8 vs 8.2 MiB).
  std::string machine = "q35,sata=off";
  // nullopt: KVM when /dev/kvm opens read-write, else TCG.
  std::optional<bool> kvm;
  // Kernel parameters that shorten the boot of the Debian cloud kernel
  // (no legacy UART/PS2 probing, no crypto self tests).
  std::string boot_params =
      "8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
      "tsc=reliable no_timer_check cryptomgr.notests";
  // The agent's listen addresses as the guest sees them.
  std::string agent_listen = "serial:///dev/virtio-ports/agent,serial:///dev/virtio-ports/debug";
  std::string agent_log_level = "info";
  // TCG's translation cache in MiB (QEMU's own default is 1 GiB, which an
  // idle guest fills to ~100 MiB of host memory); 0 keeps QEMU's default.
  // Booting fills whatever size is given (it stays resident), yet the
  // agent's boot took no more QEMU CPU time with 16 than with 32 (median of
  // 3: 1420 vs 1720 ms) and the live translations of an idle UVM are ~10 MiB.
  unsigned tcg_tb_size_mb = 16;
  // virtio-balloon with free page reporting: memory the guest frees goes
  // back to the host instead of staying resident in QEMU.
  bool free_page_reporting = true;
  // The size of the free blocks reported, 2^order pages (order 5: 128 KiB).
  // Linux 6.1's default is 2 MiB blocks, which left ~18 MiB of an idle
  // guest's free memory resident (order 9: 103, 7: 98, 5: 86, 3: 83 MiB of
  // guest RAM touched); smaller orders report more often for little more.
  // Passed as page_reporting.page_reporting_order= (guest-agent/vm/page_reporting.h).
  unsigned page_reporting_order = 5;
  // How often WaitAgentReady looks at the VM while waiting for the agent.
  std::chrono::milliseconds ping_timeout{250};
  // Memory snapshots (the warm pool, host-shim/pool/pool_snapshot.h): guest
  // RAM in a shared memfd and an empty PCIe root port, so that the share can
  // be hot-added after a restore (QEMU 7.2 cannot migrate vhost-user-fs).
  // VmConfig::share_dir must be empty; the snapshot's VM and every VM
  // restored from it need the same setting (same devices, same order).
  bool share_hotplug = false;
  // Start from this memory snapshot (`-incoming exec:cat FILE`) instead of
  // booting; made by SaveSnapshot of a VM with the same configuration.
  std::filesystem::path incoming_snapshot;
  // Once the agent answers, drop QEMU's pages of the kernel and initrd files
  // (uvm/qemu/boot_file_release.h: ~19 MiB of an idle UVM on our kernel).
  bool release_boot_files = true;
  // A third virtio-serial port, "uvmshim.stdio", for bulk stdio
  // (guest-agent/bulk_output_port.h): stdout/stderr of pipes move there with
  // splice() instead of through gRPC. The host side may still not use it
  // Off by default (issue 13: not yet shown faster nor verified in VMs);
  // VmConfig::bulk_stdio_port turns it on (the shim: UVMSHIM_STDIO_BULK=1).
  bool bulk_stdio_port = false;
};

class QemuVm final : public UtilityVm {
 public:
  explicit QemuVm(VmConfig config, QemuOptions options = {});
  ~QemuVm() override;
  QemuVm(const QemuVm&) = delete;
  QemuVm& operator=(const QemuVm&) = delete;

  void Create() override;
  void Start() override;
  void WaitAgentReady() override;
  std::string AgentTarget() const override;
  std::string DebugAgentTarget() const override;
  std::filesystem::path BulkStdioSocket() const override;
  void Stop(std::chrono::milliseconds timeout) override;
  void Terminate() override;
  std::optional<ExitInfo> WaitForExit(std::chrono::milliseconds timeout) override;
  ExitInfo exit_info() const override;
  BootTimeline timeline() const override;
  std::filesystem::path console_log() const override;
  std::int64_t vmm_pid() const override;
  // The channel WaitAgentReady() proved: the serial port serves one
  // connection at a time.
  std::shared_ptr<grpc::Channel> AgentChannel() const override;

  // QEMU specific.
  // The full QEMU command line (valid after Create()).
  const std::vector<std::string>& command_line() const { return command_; }
  bool uses_kvm() const { return kvm_; }
  // Waits until `text` appears in the console log; false on timeout or when
  // the VM ended without it appearing.
  bool WaitForConsoleText(std::string_view text, std::chrono::milliseconds timeout);
  // The last `lines` lines of the console log.
  std::string ConsoleTail(std::size_t lines = 20) const;
  // Closes the readiness connection to the agent port so another process
  // can connect (a warm pool VM handed to its claimer, host-shim/pool/).
  void DropAgentChannel() {
    std::lock_guard lock(mu_);
    channel_.reset();
  }
  // Snapshots (qemu_vm_snapshot.cc). Migrates the running VM to `file`
  // (created 0600, must not exist) and waits until the migration completed;
  // the VM is paused afterwards. Throws VmError (the file may be partial).
  void SaveSnapshot(const std::filesystem::path& file, std::chrono::milliseconds timeout);
  // Starts virtiofsd on `share_dir` and hot-adds it as vhost-user-fs with
  // tag "share" (QemuOptions::share_hotplug); the agent mounts it
  // (MountGuestStorage virtiofs). Throws VmError.
  void HotAddShare(const std::filesystem::path& share_dir);

 private:
  enum class State { kNew, kCreated, kRunning, kExited };

  void Validate() const;
  std::vector<std::string> BuildCommandLine() const;
  std::filesystem::path SocketDir() const;
  void WatchExit();
  void WatchConsole();
  void Kill(ExitReason reason, const std::string& detail);
  void CleanupAfterExit();
  std::string Describe() const;  // "utility VM <id>"
  std::chrono::microseconds SinceStart() const;

  VmConfig config_;
  QemuOptions options_;
  bool kvm_ = false;
  std::vector<std::string> command_;
  std::string qemu_path_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kNew;
  ExitInfo exit_;
  // Set before we kill QEMU (or ask it to quit): how to report the exit.
  std::optional<ExitInfo> requested_exit_;
  bool agent_ready_ = false;
  BootTimeline timeline_;
  std::chrono::steady_clock::time_point start_time_;
  boost::process::child qemu_;
  pid_t qemu_pid_ = 0;
  bool qemu_reaped_ = false;
  boost::process::child virtiofsd_;
  std::unique_ptr<QmpClient> qmp_;
  std::shared_ptr<grpc::Channel> channel_;
  std::thread exit_watcher_;
  std::thread console_watcher_;
  std::thread share_watcher_;  // HotAddShare's virtiofsd: its death ends the VM, as at boot
  UniqueFd console_stop_fd_;
  std::vector<std::filesystem::path> sockets_;
};

}  // namespace uvmshim::uvm
