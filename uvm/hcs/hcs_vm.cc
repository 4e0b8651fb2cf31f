#include "uvm/hcs/hcs_vm.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <system_error>

#include "common/file_tail.h"
#include "common/private_dir.h"

namespace uvmshim::uvm::hcs {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kConsoleTailBytes = 2048;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

const char* StateName(int state) {
  static constexpr const char* kNames[] = {"new", "created", "running", "exited", "closed"};
  return kNames[state];
}

}  // namespace

// Forwards HCS events to the VM until detached. HCS may call it on any of
// its threads; the VM detaches it before closing the system handle.
class HcsVm::EventSink final : public HcsEventSink {
 public:
  explicit EventSink(HcsVm* vm) : vm_(vm) {}

  void OnHcsEvent(std::uint32_t event_type, std::string_view event_data) override {
    std::lock_guard lock(mutex_);
    if (vm_ == nullptr) return;
    switch (event_type) {
      case kHcsEventSystemExited:
        vm_->OnSystemExited(event_data);
        break;
      case kHcsEventServiceDisconnect:
        vm_->OnServiceDisconnect();
        break;
      default:
        spdlog::debug("UVM {}: HCS event 0x{:x}: {}", vm_->config_.id, event_type,
                      std::string(event_data.substr(0, 500)));
        break;
    }
  }

  void Detach() {
    std::lock_guard lock(mutex_);
    vm_ = nullptr;
  }

 private:
  std::mutex mutex_;
  HcsVm* vm_;
};

HcsVm::HcsVm(VmConfig config, HcsVmOptions options, HcsVmDeps deps)
    : config_(std::move(config)),
      options_(std::move(options)),
      deps_(std::move(deps)),
      sink_(std::make_shared<EventSink>(this)) {
  if (!deps_.api) throw VmError("HcsVm: no HcsApi given");
  if (!deps_.dial_guest) throw VmError("HcsVm: no guest dialer given");
  if (!deps_.make_relay_listener) throw VmError("HcsVm: no relay listener factory given");
}

HcsVm::~HcsVm() {
  relay_.reset();  // aborts relayed connections and joins their threads
  {
    std::lock_guard call(call_mutex_);
    try {
      std::unique_lock lock(mutex_);
      TerminateLocked(lock, ExitReason::kTerminated, "UtilityVm destroyed");
    } catch (const std::exception& e) {
      spdlog::error("UVM {}: terminate on destruction failed: {}", config_.id, e.what());
    }
  }
  console_.reset();
  CloseSystem();
}

void HcsVm::CloseSystem() {
  sink_->Detach();
  if (system_) system_->Reset();
  std::lock_guard lock(mutex_);
  if (state_ != State::kExited) state_ = State::kClosed;
}

RootfsKind HcsVm::RootfsKindFor(const std::filesystem::path& rootfs) {
  if (rootfs.empty()) return RootfsKind::kNone;
  const std::string ext = Lower(rootfs.extension().string());
  if (ext == ".vhd" || ext == ".vhdx") return RootfsKind::kScsiDisk;
  return RootfsKind::kPlan9Share;
}

std::string HcsVm::HostPath(const std::filesystem::path& path) const {
  return deps_.host_path_string ? deps_.host_path_string(path) : path.string();
}

std::string HcsVm::console_pipe() const {
  if (!config_.debug_console) return "";
  return R"(\\.\pipe\uvmshim-)" + config_.id + "-console";
}

std::filesystem::path HcsVm::console_log() const {
  if (!config_.debug_console || config_.state_dir.empty()) return {};
  return config_.state_dir / "console.log";
}

std::chrono::microseconds HcsVm::SinceStart() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_time_);
}

void HcsVm::RequireState(std::initializer_list<State> allowed, std::string_view action) const {
  std::lock_guard lock(mutex_);
  if (std::find(allowed.begin(), allowed.end(), state_) != allowed.end()) return;
  throw VmError("UVM " + config_.id + ": cannot " + std::string(action) + " in state " +
                StateName(static_cast<int>(state_)));
}

void HcsVm::Create() {
  std::lock_guard call(call_mutex_);
  RequireState({State::kNew}, "create");
  const std::string& id = config_.id;
  if (id.empty()) throw VmError("UVM create: empty id");

  // Everything that can be checked before HCS is involved.
  auto require_file = [&](const std::filesystem::path& path, const char* what) {
    std::error_code ec;
    if (path.empty()) throw VmError("UVM " + id + ": no " + what + " configured");
    if (!std::filesystem::is_regular_file(path, ec)) {
      throw VmError("UVM " + id + ": boot file missing: " + what + " " + path.string() +
                    (ec ? " (" + ec.message() + ")" : ""));
    }
  };
  require_file(config_.kernel, "kernel");
  require_file(config_.initrd, "initrd");
  const RootfsKind rootfs_kind = RootfsKindFor(config_.rootfs_dir);
  if (rootfs_kind == RootfsKind::kScsiDisk) require_file(config_.rootfs_dir, "rootfs VHD");
  if (rootfs_kind == RootfsKind::kPlan9Share) {
    std::error_code ec;
    if (!std::filesystem::is_directory(config_.rootfs_dir, ec)) {
      throw VmError("UVM " + id + ": rootfs directory missing: " + config_.rootfs_dir.string());
    }
  }
  if (!config_.state_dir.empty()) {
    try {
      CreatePrivateDir(config_.state_dir);
    } catch (const Error& e) {
      throw VmError("UVM " + id + ": cannot create state dir: " + e.what());
    }
  }

  UvmDocumentOptions doc_options;
  doc_options.owner = options_.owner;
  doc_options.kernel_path = HostPath(config_.kernel);
  doc_options.initrd_path = HostPath(config_.initrd);
  doc_options.memory_mb = config_.memory_mb;
  doc_options.allow_overcommit = options_.allow_overcommit;
  doc_options.cpus = config_.cpus;
  if (!deps_.probe_host) throw VmError("UVM " + id + ": no host probe: the HCS document depends on the Windows build");
  doc_options.host = deps_.probe_host();
  if (const unsigned cpus = ClampVcpus(config_.cpus, doc_options.host); cpus != config_.cpus)
    spdlog::warn("UVM {}: {} vCPUs asked, the host has {} logical processors: the VM gets {}", id, config_.cpus,
                 doc_options.host.logical_processors, cpus);
  doc_options.console_pipe = console_pipe();
  doc_options.rootfs = {rootfs_kind,
                        rootfs_kind == RootfsKind::kNone ? "" : HostPath(config_.rootfs_dir),
                        false};
  doc_options.agent_vsock_port = options_.agent_vsock_port;
  doc_options.kernel_cmdline_extra = config_.kernel_cmdline_extra;
  std::string document = BuildUvmDocument(doc_options);

  HcsApi& api = *deps_.api;
  // The VM's worker process runs as the VM's own account: it needs read
  // access to the files it opens. Directories (Plan9) are served by HCS itself.
  std::vector<std::string> granted = {doc_options.kernel_path, doc_options.initrd_path};
  if (rootfs_kind == RootfsKind::kScsiDisk) granted.push_back(doc_options.rootfs.host_path);
  for (const std::string& path : granted) {
    const HResult hr = api.GrantVmAccess(id, path);
    if (Failed(hr)) throw HcsError("HcsGrantVmAccess", hr, path);
  }

  auto system = std::make_unique<HcsSystem>(api);
  RunHcsCall(api, "HcsCreateComputeSystem", options_.create_timeouts, [&](HcsHandle op) {
    return api.CreateComputeSystem(id, document, op, system->out());
  });
  // From here on a failure must not leave the created VM behind: closing the
  // last handle terminates it (ShouldTerminateOnLastHandleClosed), and we
  // also terminate explicitly.
  auto abandon = [&](const std::exception& cause) {
    sink_->Detach();  // the VM never became ours to report on
    try {
      RunHcsCall(api, "HcsTerminateComputeSystem", options_.control_timeouts,
                 [&](HcsHandle op) { return api.TerminateComputeSystem(system->get(), op, ""); });
    } catch (const std::exception& e) {
      spdlog::warn("UVM {}: terminate after failed create: {}", id, e.what());
    }
    system->Reset();
    {
      // The sink is detached for good: this object cannot create again.
      std::lock_guard lock(mutex_);
      if (state_ == State::kNew) state_ = State::kClosed;
    }
    spdlog::error("UVM {}: create failed: {}", id, cause.what());
  };
  try {
    const HResult hr = api.SetComputeSystemCallback(system->get(), sink_.get());
    if (Failed(hr)) throw HcsError("HcsSetComputeSystemCallback", hr, "");
    const std::string properties =
        RunHcsCall(api, "HcsGetComputeSystemProperties", options_.control_timeouts,
                   [&](HcsHandle op) {
                     return api.GetComputeSystemProperties(system->get(), op,
                                                           BuildBasicPropertiesQuery());
                   });
    const Guid runtime_id = ParseRuntimeId(properties);
    auto listener = deps_.make_relay_listener();
    net::RelayOptions relay_options;
    relay_options.peer_filter = deps_.relay_peer_filter;
    auto dial = deps_.dial_guest;
    const std::uint32_t port = options_.agent_vsock_port;
    relay_ = std::make_unique<net::StreamRelay>(
        std::move(listener),
        [dial, runtime_id, port](milliseconds timeout) { return dial(runtime_id, port, timeout); },
        relay_options);
    std::lock_guard lock(mutex_);
    runtime_id_ = runtime_id;
    document_ = std::move(document);
    system_ = std::move(system);
    if (state_ == State::kNew) state_ = State::kCreated;  // unless it already exited
  } catch (const HcsError& e) {
    abandon(e);
    throw;
  } catch (const std::exception& e) {
    abandon(e);
    throw VmError("UVM " + id + ": create: " + e.what());
  }
  spdlog::info("UVM {}: created (RuntimeId {})", id, ToString(runtime_id()));
}

void HcsVm::Start() {
  std::lock_guard call(call_mutex_);
  RequireState({State::kCreated}, "start");
  HcsApi& api = *deps_.api;
  {
    std::lock_guard lock(mutex_);
    start_time_ = Clock::now();
  }
  if (config_.debug_console && deps_.capture_console && !console_log().empty()) {
    // Before the start, so the first bytes are not missed; it connects to
    // the pipe as soon as HCS creates it.
    console_ = deps_.capture_console(console_pipe(), console_log(), [this] {
      std::lock_guard lock(mutex_);
      if (!timeline_.kernel_started) timeline_.kernel_started = SinceStart();
    });
  }
  try {
    RunHcsCall(api, "HcsStartComputeSystem", options_.start_timeouts,
               [&](HcsHandle op) { return api.StartComputeSystem(system_->get(), op, ""); });
  } catch (const std::exception& e) {
    std::unique_lock lock(mutex_);
    try {
      TerminateLocked(lock, ExitReason::kBootFailed, std::string("start failed: ") + e.what());
    } catch (const std::exception& te) {
      spdlog::warn("UVM {}: terminate after failed start: {}", config_.id, te.what());
    }
    if (state_ != State::kExited) RecordExit(ExitReason::kBootFailed, e.what());
    throw;
  }
  {
    std::lock_guard lock(mutex_);
    if (state_ == State::kCreated) state_ = State::kRunning;  // unless it already exited
    timeline_.process_started = SinceStart();
  }
  relay_->Start();
  spdlog::info("UVM {}: started; agent relay at {}", config_.id, relay_->Target());
}

void HcsVm::WaitAgentReady() {
  RequireState({State::kRunning, State::kExited}, "wait for the agent");
  Clock::time_point deadline;
  Guid runtime_id;
  {
    std::lock_guard lock(mutex_);
    deadline = start_time_ + config_.boot_timeout;
    runtime_id = runtime_id_;
  }
  const std::uint32_t port = options_.agent_vsock_port;
  std::string last_error = "no attempt made";
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::kExited) {
        throw VmError("UVM " + config_.id + " exited before its agent was ready (" +
                      ToString(exit_.reason) + ": " + exit_.detail + ")" + ConsoleTail());
      }
    }
    const auto now = Clock::now();
    if (now >= deadline) break;
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - now);
    try {
      auto stream = deps_.dial_guest(runtime_id, port,
                                     std::min(options_.ready_probe_connect_timeout, remaining));
      if (stream) {
        std::lock_guard lock(mutex_);
        agent_ready_ = true;
        timeline_.agent_ready = SinceStart();
        spdlog::info("UVM {}: agent listening on vsock {} after {} ms", config_.id, port,
                     timeline_.agent_ready->count() / 1000);
        return;
      }
      last_error = "dialer returned no stream";
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    std::unique_lock lock(mutex_);
    exited_cv_.wait_for(lock, options_.ready_probe_interval,
                        [this] { return state_ == State::kExited; });
  }
  const std::string reason = "agent not listening on vsock port " + std::to_string(port) +
                             " within " + std::to_string(config_.boot_timeout.count()) +
                             " ms (last error: " + last_error + ")";
  {
    std::lock_guard call(call_mutex_);
    std::unique_lock lock(mutex_);
    try {
      TerminateLocked(lock, ExitReason::kBootFailed, reason);
    } catch (const std::exception& e) {
      spdlog::warn("UVM {}: terminate after boot timeout: {}", config_.id, e.what());
    }
  }
  throw VmError("UVM " + config_.id + ": " + reason + ConsoleTail());
}

std::string HcsVm::AgentTarget() const {
  std::lock_guard lock(mutex_);
  if (!relay_) return "";
  return relay_->Target();
}

Guid HcsVm::runtime_id() const {
  std::lock_guard lock(mutex_);
  return runtime_id_;
}

std::string HcsVm::document() const {
  std::lock_guard lock(mutex_);
  return document_;
}

bool HcsVm::WaitExitedFor(std::unique_lock<std::mutex>& lock, milliseconds timeout) {
  return exited_cv_.wait_for(lock, timeout, [this] { return state_ == State::kExited; });
}

void HcsVm::TerminateLocked(std::unique_lock<std::mutex>& lock, ExitReason requested_reason,
                            const std::string& why) {
  // Caller holds call_mutex_ and `lock` (on mutex_).
  if (state_ != State::kCreated && state_ != State::kRunning) return;
  if (!requested_exit_) requested_exit_ = requested_reason;
  spdlog::info("UVM {}: terminating ({})", config_.id, why);
  HcsApi& api = *deps_.api;
  HcsHandle system = system_->get();
  lock.unlock();  // the exit callback needs mutex_ while HCS terminates
  try {
    RunHcsCall(api, "HcsTerminateComputeSystem", options_.control_timeouts,
               [&](HcsHandle op) { return api.TerminateComputeSystem(system, op, ""); });
  } catch (const HcsError& e) {
    lock.lock();
    // Already stopped is the outcome we wanted.
    if (e.hresult() != hresult::kSystemAlreadyStopped && state_ != State::kExited) throw;
    lock.unlock();
  }
  lock.lock();
  // A completed terminate means the VM is gone; the event normally follows.
  if (!WaitExitedFor(lock, options_.exit_event_grace)) {
    RecordExit(*requested_exit_, why + " (HCS sent no exit event)");
  }
}

void HcsVm::Terminate() {
  std::lock_guard call(call_mutex_);
  std::unique_lock lock(mutex_);
  TerminateLocked(lock, ExitReason::kTerminated, "Terminate()");
}

void HcsVm::Stop(milliseconds timeout) {
  std::lock_guard call(call_mutex_);
  const auto deadline = Clock::now() + timeout;
  HcsHandle system = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::kCreated && state_ != State::kRunning) return;
    if (!requested_exit_) requested_exit_ = ExitReason::kShutdown;
    system = system_->get();
  }
  HcsApi& api = *deps_.api;
  std::string why = "graceful shutdown did not finish within " + std::to_string(timeout.count()) +
                    " ms";
  bool shutdown_accepted = false;
  try {
    HcsCallTimeouts timeouts = options_.control_timeouts;
    timeouts.timeout = timeout;
    RunHcsCall(api, "HcsShutDownComputeSystem", timeouts,
               [&](HcsHandle op) { return api.ShutDownComputeSystem(system, op, ""); });
    shutdown_accepted = true;
  } catch (const HcsError& e) {
    if (e.hresult() == hresult::kSystemAlreadyStopped) {
      shutdown_accepted = true;
    } else {
      why = e.what();
      spdlog::warn("UVM {}: {}; terminating", config_.id, why);
    }
  }
  std::unique_lock lock(mutex_);
  if (shutdown_accepted) {
    const auto remaining =
        std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    if (WaitExitedFor(lock, remaining)) return;
  }
  TerminateLocked(lock, ExitReason::kShutdown, why);
}

std::optional<ExitInfo> HcsVm::WaitForExit(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (state_ == State::kNew || state_ == State::kClosed) return std::nullopt;  // nothing runs
  if (!WaitExitedFor(lock, timeout)) return std::nullopt;
  return exit_;
}

ExitInfo HcsVm::exit_info() const {
  std::lock_guard lock(mutex_);
  return exit_;
}

BootTimeline HcsVm::timeline() const {
  std::lock_guard lock(mutex_);
  return timeline_;
}

void HcsVm::RecordExit(ExitReason reason, std::string detail) {
  if (state_ == State::kExited) return;
  state_ = State::kExited;
  exit_.reason = reason;
  exit_.detail = std::move(detail);
  exited_cv_.notify_all();
  spdlog::info("UVM {}: exited ({}: {})", config_.id, ToString(reason), exit_.detail);
}

void HcsVm::OnSystemExited(std::string_view event_data) {
  const SystemExitStatus status = ParseSystemExitStatus(event_data);
  std::string detail = "HCS exit event";
  if (status.parsed) {
    detail += ": ExitType=" + (status.exit_type.empty() ? "?" : status.exit_type) +
              " Status=" + HexHResult(status.status);
  } else if (!event_data.empty()) {
    detail += ": " + std::string(event_data.substr(0, 200));
  }
  std::lock_guard lock(mutex_);
  ExitReason reason;
  if (requested_exit_) {
    reason = *requested_exit_;
  } else if (!agent_ready_) {
    reason = ExitReason::kBootFailed;  // died before the agent ever answered
  } else if (status.exit_type == "GracefulExit" && !Failed(status.status)) {
    reason = ExitReason::kShutdown;  // the guest powered itself off
  } else {
    reason = ExitReason::kCrashed;
  }
  RecordExit(reason, detail);
}

void HcsVm::OnServiceDisconnect() {
  std::lock_guard lock(mutex_);
  RecordExit(ExitReason::kCrashed, "lost the connection to the Host Compute Service (vmcompute)");
}

std::string HcsVm::ConsoleTail() const {
  const auto log = console_log();
  if (log.empty()) return "";
  const std::string tail = ReadFileTail(log, {.max_bytes = kConsoleTailBytes});
  if (tail.empty()) return "";
  return "\n--- console tail (" + log.string() + ") ---\n" + tail;
}

}  // namespace uvmshim::uvm::hcs
