#include "shim/sandbox.h"

#include "sandbox_share.h"

#include <sys/stat.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "agent_host_factory.h"
#include "paths.h"
#include "sandbox_state.h"
#include "shim/rootfs_mount.h"

namespace uvmshim::shim {
namespace fs = std::filesystem;

namespace {
long MillisSince(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
}
}  // namespace

std::shared_ptr<Sandbox> Sandbox::Start(Params params) {
  return std::shared_ptr<Sandbox>(new Sandbox(std::move(params)));
}

// Members unwind in reverse order when a step throws: the host ends before
// its directories go.
Sandbox::Sandbox(Params params)
    : params_(std::move(params)),
      state_dir_(params_.state_dir.empty() ? host::StateDir(params_.ns, params_.id) : params_.state_dir,
                 params_.state_dir.empty() ? host::EmptyParent::kRemove : host::EmptyParent::kKeep) {
  const fs::path sockets = host::SocketDirFor(state_dir_.path());
  // Other shims create their socket dirs next to ours: the parent stays.
  if (sockets != state_dir_.path()) socket_dir_ = host::OwnedDir(sockets, host::EmptyParent::kKeep);
  spdlog::info("sandbox {}: starting ({} isolation, {} MiB, {} cpus)", params_.id,
               host::ToString(params_.config.isolation), params_.config.memory_mb, params_.config.cpus);
  host::SandboxSpec spec{params_.id, params_.config, state_dir_.path(), sockets,
                         params_.cgroup_parent.empty() ? host::SandboxCgroupParent(params_.ns, params_.id)
                                                       : params_.cgroup_parent,
                         {}};
  if (params_.network_namespace && params_.config.isolation == host::Isolation::kHyperv) {
    network_ = host::netns::PodNetworkAttachment::Attach(params_.network_namespace->path,
                                                         params_.network_namespace->field);
    spec.nics = network_->nics();
  }
  const auto host_started = std::chrono::steady_clock::now();
  host_ = host::StartAgentHost(spec);
  const std::chrono::milliseconds startup(MillisSince(host_started));
  spdlog::debug("event=sandbox_host_started ms={}", startup.count());
  if (network_) network_->CloseTapFds();  // QEMU holds them: the taps end with it
  const auto deadlines = host::ScaledForStartup(
      {params_.config.agent_call_timeout, params_.config.agent_lifecycle_timeout}, startup);
  if (deadlines.lifecycle > params_.config.agent_lifecycle_timeout)
    spdlog::info("event=agent_lifecycle_deadline_scaled ms={} startup_ms={}", deadlines.lifecycle.count(),
                 startup.count());
  agent_ = std::make_shared<host::AgentClient>(host_->channel(), deadlines);
  agent_->set_bulk_stdio(host_->bulk_stdio());
  debug_target_ = host_->debug_target();
  console_log_ = host_->console_log().string();
  host_pid_ = host_->pid();
}

host::GuestContainer Sandbox::PrepareContainer(const std::string& container_id,
                                                          const fs::path& host_rootfs,
                                                          const std::string& spec_json) {
  std::lock_guard lock(mu_);
  if (!host_) throw std::runtime_error(fmt::format("sandbox {} has ended", params_.id));
  // TODO(merge volumes): PrepareContainer also maps the spec's bind mounts.
  return host_->PrepareContainer(container_id, host_rootfs, spec_json);
}

void Sandbox::ReleaseContainer(const std::string& container_id) {
  std::lock_guard lock(mu_);
  if (host_) host_->ReleaseContainer(container_id);
}

std::optional<std::string> Sandbox::unexpected_exit() const {
  std::lock_guard lock(mu_);
  if (killed_because_) return killed_because_;
  return host_ ? host_->unexpected_exit() : ended_unexpectedly_;
}

const host::agentpb::PodNetwork* Sandbox::pod_network() const {
  return network_ && network_->has_interfaces() ? &network_->network() : nullptr;
}

void Sandbox::ReleaseLinkIfHostEnded(std::chrono::milliseconds wait) {
  // The agent's channel breaks a moment before the host's end is known (its
  // watcher reaps QEMU or the agent): wait for that end, woken by it, for a
  // bounded time; a host still running is left to Stop().
  host::AgentHost* host = nullptr;
  {
    std::lock_guard lock(mu_);
    if (stopped_ || !host_ || !network_) return;
    host = host_.get();
    ++host_waiters_;
  }
  host->WaitForEnd(wait);
  std::lock_guard lock(mu_);
  if (--host_waiters_ == 0) host_waiters_done_.notify_all();
  if (stopped_ || !host_ || !network_) return;
  if (auto why = host_->unexpected_exit()) {
    spdlog::warn("event=pod_link_released sandbox={} netns={} reason=\"{}\"", params_.id, network_->path(), *why);
    network_->RemoveFilters();
  }
}

void Sandbox::Kill(const std::string& why) {
  std::lock_guard lock(mu_);
  if (!host_ || killed_because_) return;
  killed_because_ = fmt::format("sandbox host killed: {}", why);
  spdlog::error("sandbox {}: {}: killing its {} (pid {})", params_.id, why,
                isolation() == host::Isolation::kHyperv ? "utility VM" : "host agent", host_pid_);
  host_->Kill();
}

Sandbox::~Sandbox() { Stop(); }

bool Sandbox::stopped() const {
  std::lock_guard lock(mu_);
  return stopped_;
}

bool Sandbox::single_use() const {
  std::lock_guard lock(mu_);
  return host_ && host_->single_use();
}

void Sandbox::Stop() {
  std::unique_ptr<host::AgentHost> host;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (host_) ended_unexpectedly_ = host_->unexpected_exit();
  }
  const auto stop_started = std::chrono::steady_clock::now();
  bool shutdown_answered = false;
  // A claimed pool VM is never reused: killing it spares the guest's poweroff
  // (slow under TCG) on Delete's critical path.
  if (agent_ && !(host_ && host_->single_use())) {
    try {
      agent_->Shutdown(std::chrono::seconds(5));
      shutdown_answered = true;
    } catch (const host::AgentError& e) {
      spdlog::debug("sandbox {}: agent shutdown: {}", params_.id, e.what());
    }
  }
  if (host_) {
    // An agent that did not answer will not power its host off: no point waiting.
    if (shutdown_answered) host_->WaitEnded(std::chrono::seconds(10));
    else host_->Kill();
  }
  {
    std::unique_lock lock(mu_);
    // The host has ended (or was killed): a ReleaseLinkIfHostEnded waiting on
    // it wakes now, and must be out before the host object goes.
    host_waiters_done_.wait(lock, [&] { return host_waiters_ == 0; });
    host = std::move(host_);
  }
  host.reset();  // the VM object and its share go with it
  spdlog::debug("event=sandbox_host_ended ms={}", MillisSince(stop_started));
  if (network_ && !fs::exists(network_->path()))
    spdlog::warn("event=pod_netns_gone sandbox={} netns={}: the pod's network namespace was deleted while the "
                 "sandbox ran; it lived on while the sandbox held it",
                 params_.id, network_->path());
  network_.reset();  // QEMU is gone, so are the taps: remove the filters
  spdlog::info("sandbox {}: ended", params_.id);
  socket_dir_.Remove();
  state_dir_.Remove();
}

}  // namespace uvmshim::shim
