#include "vm_agent_host.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

#include "paths.h"
#include "agent_host_factory.h"
#include "uvm/agent_channel.h"
#include "uvm/vm_factory.h"

namespace uvmshim::host {
namespace fs = std::filesystem;

namespace {

// TODO(merge volumes): the `volumes` branch replaces this with
// host-shim/sandbox_share.{h,cc} (bind sources, tag `share`, /run/share).
// Until then: one directory per sandbox, made a shared mount point before
// virtiofsd starts (so binds added later reach the guest), exported as the
// VM's rootfs share; each container's rootfs is bound at <share>/<id>/rootfs.
class MinimalShare {
 public:
  explicit MinimalShare(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    if (::mount(dir_.c_str(), dir_.c_str(), nullptr, MS_BIND, nullptr) != 0)
      throw std::runtime_error(fmt::format("bind {} onto itself: {}", dir_.string(), std::strerror(errno)));
    mounted_ = true;
    if (::mount(nullptr, dir_.c_str(), nullptr, MS_SHARED, nullptr) != 0)
      throw std::runtime_error(fmt::format("make {} shared: {}", dir_.string(), std::strerror(errno)));
  }
  ~MinimalShare() {
    std::lock_guard lock(mu_);
    for (const auto& [id, target] : bound_)
      if (Unbind(target)) RemoveEntry(id);
    if (mounted_ && ::umount2(dir_.c_str(), MNT_DETACH) != 0)
      spdlog::warn("unmount {}: {}", dir_.string(), std::strerror(errno));
    std::error_code ignored;
    fs::remove(dir_, ignored);  // never recursive: a bind still mounted below must not be emptied
  }
  const fs::path& dir() const { return dir_; }

  std::string Add(const std::string& id, const fs::path& host_rootfs) {
    std::lock_guard lock(mu_);
    if (bound_.contains(id)) return GuestPath(id);
    const fs::path target = dir_ / id / "rootfs";
    fs::create_directories(target);
    if (::mount(host_rootfs.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      const int error = errno;
      RemoveEntry(id);
      throw std::invalid_argument(fmt::format("rootfs {}: bind into the sandbox share: {}",
                                              host_rootfs.string(), std::strerror(error)));
    }
    bound_[id] = target;
    return GuestPath(id);
  }
  void Remove(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = bound_.find(id);
    if (it == bound_.end()) return;
    if (Unbind(it->second)) RemoveEntry(id);
    bound_.erase(it);
  }

 private:
  static std::string GuestPath(const std::string& id) {
    return (fs::path(uvm::kGuestRootfsPath) / id / "rootfs").string();
  }
  static bool Unbind(const fs::path& target) {
    if (::umount2(target.c_str(), MNT_DETACH) == 0 || errno == EINVAL || errno == ENOENT) return true;
    spdlog::warn("unmount {}: {}", target.string(), std::strerror(errno));
    return false;
  }
  // The (now empty) mount point directories of one container.
  void RemoveEntry(const std::string& id) const {
    std::error_code ignored;
    fs::remove(dir_ / id / "rootfs", ignored);
    fs::remove(dir_ / id, ignored);
  }
  fs::path dir_;
  bool mounted_ = false;
  std::mutex mu_;
  std::map<std::string, fs::path> bound_;
};

class VmAgentHost final : public AgentHost {
 public:
  VmAgentHost(std::unique_ptr<MinimalShare> share, std::unique_ptr<uvm::UtilityVm> vm)
      : share_(std::move(share)), vm_(std::move(vm)) {
    vm_->Create();
    vm_->Start();
    vm_->WaitAgentReady();  // throws with the console's tail
    channel_ = uvm::AgentChannel(*vm_);
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
    return {share_->Add(container_id, host_rootfs), spec_json};
  }
  void ReleaseContainer(const std::string& container_id) override { share_->Remove(container_id); }
  void WaitEnded(std::chrono::milliseconds timeout) override {
    asked_to_end_ = true;
    // The agent powers the VM off after Shutdown; Stop() forces it after the timeout.
    if (!vm_->WaitForExit(timeout)) vm_->Stop(std::chrono::seconds(2));
  }
  void Kill() override {
    asked_to_end_ = true;
    vm_->Terminate();
  }
  std::optional<std::string> unexpected_exit() const override {
    auto info = vm_->exit_info();
    if (asked_to_end_ || info.reason == uvm::ExitReason::kRunning) return std::nullopt;
    return fmt::format("utility VM ended: {} {}", uvm::ToString(info.reason), info.detail);
  }
  std::int64_t pid() const override { return vm_->vmm_pid(); }
  fs::path console_log() const override { return vm_->console_log(); }

 private:
  std::unique_ptr<MinimalShare> share_;  // outlives the VM (destroyed after it)
  std::unique_ptr<uvm::UtilityVm> vm_;
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<bool> asked_to_end_{false};
};

}  // namespace

std::unique_ptr<AgentHost> StartVmAgentHost(const SandboxSpec& spec) {
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
  auto share = std::make_unique<MinimalShare>(spec.state_dir / "share");
  config.rootfs_dir = share->dir();
  // VmError texts already name the VM ("utility VM <id>: ...").
  return std::make_unique<VmAgentHost>(std::move(share), uvm::MakeUtilityVm(std::move(config)));
}

}  // namespace uvmshim::host
