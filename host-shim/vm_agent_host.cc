#include "vm_agent_host.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "bulk_stdio_channel.h"
#include "paths.h"
#include "agent_host_factory.h"
#include "pool/pool_dir.h"
#include "pool/pooled_vm.h"
#include "sandbox_share.h"
#include "uvm/vm_factory.h"

namespace uvmshim::host {
namespace fs = std::filesystem;

namespace {

class VmAgentHost final : public AgentHost {
 public:
  VmAgentHost(std::unique_ptr<SandboxShare> share, std::unique_ptr<uvm::UtilityVm> vm, bool single_use = false)
      : share_(std::move(share)), vm_(std::move(vm)), single_use_(single_use) {
    vm_->Create();
    vm_->Start();
    vm_->WaitAgentReady();  // throws with the console's tail
    channel_ = vm_->AgentChannel();
    if (!channel_) throw std::runtime_error("utility VM " + vm_->AgentTarget() + ": the backend has no agent channel");
    ConnectBulkStdio();
    auto t = vm_->timeline();
    auto ms = [](const auto& d) { return d ? fmt::format("{:.0f}ms", d->count() / 1000.0) : std::string("-"); };
    spdlog::info("uvm ready: vmm_started={} kernel_started={} agent_ready={} vmm_pid={}",
                 ms(t.process_started), ms(t.kernel_started), ms(t.agent_ready), vm_->vmm_pid());
  }
  ~VmAgentHost() override {
    if (vm_->exit_info().reason == uvm::ExitReason::kRunning) vm_->Terminate();
  }

  std::shared_ptr<grpc::Channel> channel() override { return channel_; }
  std::string debug_target() const override { return vm_->DebugAgentTarget(); }
  GuestContainer PrepareContainer(const std::string& container_id, const fs::path& host_rootfs,
                                  const std::string& spec_json) override {
    return share_->Prepare(container_id, host_rootfs, spec_json);
  }
  void ReleaseContainer(const std::string& container_id) override { share_->Release(container_id); }
  // Called once the agent answered Shutdown, which it does only after its
  // containers are gone and the guest's filesystems are synced
  // (guest-agent/vm/vm_main.cc): nothing in the guest is left that a kill
  // could lose, so the VM ends now instead of after the guest's power-off (the
  // kernel's shutdown path and QEMU's exit: tens to hundreds of ms under TCG,
  // on every sandbox's Delete).
  void WaitEnded(std::chrono::milliseconds) override {
    asked_to_end_ = true;
    vm_->Terminate();
  }
  void Kill() override {
    asked_to_end_ = true;
    vm_->Terminate();
  }
  bool WaitForEnd(std::chrono::milliseconds timeout) override { return vm_->WaitForExit(timeout).has_value(); }
  std::optional<std::string> unexpected_exit() const override {
    auto info = vm_->exit_info();
    if (asked_to_end_ || info.reason == uvm::ExitReason::kRunning) return std::nullopt;
    return fmt::format("utility VM ended: {} {}", uvm::ToString(info.reason), info.detail);
  }
  bool single_use() const override { return single_use_; }
  std::int64_t pid() const override { return vm_->vmm_pid(); }
  fs::path console_log() const override { return vm_->console_log(); }
  std::shared_ptr<BulkStdioChannel> bulk_stdio() override { return bulk_stdio_; }

 private:
  // Without it (no port, switched off, the connect failed) stdio goes over
  // gRPC, as before: a warning, not an error.
  void ConnectBulkStdio() {
    const fs::path socket = vm_->BulkStdioSocket();
    if (socket.empty()) return;
    if (!BulkStdioEnabled()) {
      spdlog::info("event=bulk_stdio_off reason=\"UVMSHIM_STDIO_BULK is not 1\"");
      return;
    }
    try {
      bulk_stdio_ = std::make_shared<BulkStdioChannel>(socket);
    } catch (const std::exception& error) {
      spdlog::warn("event=bulk_stdio_unavailable error=\"{}\"", error.what());
    }
  }

  std::unique_ptr<SandboxShare> share_;  // outlives the VM (declared first, destroyed last)
  std::unique_ptr<uvm::UtilityVm> vm_;
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<BulkStdioChannel> bulk_stdio_;
  const bool single_use_;
  std::atomic<bool> asked_to_end_{false};
};

}  // namespace

std::unique_ptr<AgentHost> StartVmAgentHost(const SandboxSpec& spec) {
  // Warm pool (issue #15): a pooled VM has no NIC, so pods with a network boot cold.
  if (spec.config.pool.enabled && spec.nics.empty()) {
    if (auto claimed = pool::ClaimWarmVm(pool::KeyFor(spec.config), spec.config.pool, spec.id)) {
      auto share = std::make_unique<SandboxShare>(claimed->share_dir, SandboxShare::Adopt{});
      return std::make_unique<VmAgentHost>(std::move(share), std::move(claimed->vm), /*single_use=*/true);
    }
  }
  uvm::VmConfig config;
  config.id = spec.id;
  const fs::path images = ImagesDir();
  config.kernel = spec.config.kernel.empty() ? images / "vmlinuz" : spec.config.kernel;
  config.initrd = spec.config.initrd.empty() ? images / "initrd.img" : spec.config.initrd;
  config.kernel_cmdline_extra = spec.config.kernel_cmdline_extra;
  if (spec.config.agent_log_level != "info")
    config.kernel_cmdline_extra += " uvm.log=" + spec.config.agent_log_level;
  config.memory_mb = spec.config.memory_mb;
  config.cpus = spec.config.cpus;
  config.state_dir = spec.state_dir;
  config.debug_console = spec.config.console_log;
  config.socket_dir = spec.socket_dir;
  config.boot_timeout = spec.config.boot_timeout;
  config.nics = spec.nics;
  config.bulk_stdio_port = BulkStdioEnabled();
  // The share exists (a shared mount point) before virtiofsd starts.
  auto share = std::make_unique<SandboxShare>(spec.state_dir / "share");
  config.share_dir = share->dir();
  // VmError texts already name the VM ("utility VM <id>: ...").
  return std::make_unique<VmAgentHost>(std::move(share), uvm::MakeUtilityVm(std::move(config)));
}

}  // namespace uvmshim::host
