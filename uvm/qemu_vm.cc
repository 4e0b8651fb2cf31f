#include "uvm/qemu_vm.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <future>

#include "agent.grpc.pb.h"
#include "common/file_tail.h"
#include "common/ids.h"
#include "common/private_dir.h"
#include "common/unique_fd.h"
#include "uvm/agent_channel.h"
#include "uvm/pid_watch.h"
#include "uvm/process_cpu.h"
#include "uvm/qemu_nic.h"
#include "uvm/qemu/boot_file_release.h"
#include "uvm/qemu/command_line.h"
#include "uvm/qemu/host_probe.h"
#include "uvm/qemu/vmm_process.h"
#include "uvm/qmp_client.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The last `lines` lines of a log (within its last 64 KiB), for error messages.
std::string ReadTail(const fs::path& file, std::size_t lines) { return ReadFileTail(file, {.max_lines = lines}); }

// gRPC deadlines are system_clock time points.
std::chrono::system_clock::time_point GrpcDeadline(Clock::time_point deadline) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(deadline - Clock::now());
}

}  // namespace

// ---------------------------------------------------------------- QemuVm

QemuVm::QemuVm(VmConfig config, QemuOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

QemuVm::~QemuVm() {
  Kill(ExitReason::kTerminated, "QemuVm destroyed while the VM was running");
  if (exit_watcher_.joinable()) exit_watcher_.join();
  if (share_watcher_.joinable()) share_watcher_.join();  // returns once QEMU has exited
  if (console_stop_fd_) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto ignored = ::write(console_stop_fd_.get(), &one, sizeof one);
  }
  if (console_watcher_.joinable()) console_watcher_.join();
  channel_.reset();
  qmp_.reset();
  CleanupAfterExit();
}

std::string QemuVm::Describe() const { return "utility VM " + config_.id; }

std::chrono::microseconds QemuVm::SinceStart() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_time_);
}

void QemuVm::Create() {
  std::lock_guard lock(mu_);
  if (state_ != State::kNew) throw VmError(Describe() + ": Create() called twice");
  Validate();
  qemu_path_ = *FindInPath(options_.qemu_binary);
  try {
    CreatePrivateDir(config_.state_dir);
    CreatePrivateDir(SocketDir());
  } catch (const Error& e) {
    throw VmError(fmt::format("{}: {}", Describe(), e.what()));
  }

  std::string why_not_kvm;
  kvm_ = options_.kvm ? *options_.kvm : KvmUsable(why_not_kvm);
  if (kvm_) {
    spdlog::info("event=vm_accel id={} accel=kvm", config_.id);
  } else {
    spdlog::info("event=vm_accel id={} accel=tcg reason=\"{}: software emulation\"", config_.id,
                 options_.kvm ? "disabled by option" : why_not_kvm);
  }
  command_ = BuildCommandLine();
  state_ = State::kCreated;
}

void QemuVm::Start() {
  std::unique_lock lock(mu_);
  if (state_ != State::kCreated) throw VmError(Describe() + ": Start() needs a created, not yet started VM");
  const fs::path dir = SocketDir();
  sockets_ = {dir / "qmp.sock", dir / "agent.sock", dir / "debug.sock"};
  if (!config_.share_dir.empty()) sockets_.push_back(dir / "virtiofs.sock");
  for (const auto& socket : sockets_) {
    std::error_code ignored;
    fs::remove(socket, ignored);
  }
  if (config_.debug_console) std::ofstream(console_log(), std::ios::trunc);

  // The exit watcher thread spawns virtiofsd and QEMU (their parent-death
  // signal is tied to it) and then waits for QEMU to end.
  const std::string log = (config_.state_dir / "qemu.log").string();
  std::promise<std::string> spawned;  // "" or why spawning failed
  auto spawn_result = spawned.get_future();
  exit_watcher_ = std::thread([this, log, &spawned] {
    try {
      if (!config_.share_dir.empty())
        virtiofsd_ = StartVirtiofsd({options_.virtiofsd, SocketDir() / "virtiofs.sock", config_.share_dir,
                                     config_.state_dir / "virtiofsd.log"});
      start_time_ = Clock::now();
      qemu_ = SpawnVmmProcess(qemu_path_, std::vector<std::string>(command_.begin() + 1, command_.end()), log, NicFds(config_.nics));
      qemu_pid_ = qemu_.id();
    } catch (const std::exception& error) {
      spawned.set_value(error.what());
      return;
    }
    spawned.set_value("");
    WatchExit();
  });
  if (const std::string error = spawn_result.get(); !error.empty()) {
    exit_watcher_.join();
    CleanupAfterExit();
    throw VmError(fmt::format("{}: start: {}", Describe(), error));
  }
  state_ = State::kRunning;
  spdlog::info("event=vm_spawned id={} pid={} accel={}", config_.id, qemu_pid_, kvm_ ? "kvm" : "tcg");
  if (config_.debug_console) {
    console_stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    console_watcher_ = std::thread([this] { WatchConsole(); });
  }
  lock.unlock();

  // QEMU is up once its monitor answers; the guest runs from then on.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::string last_error;
  for (;;) {
    {
      std::lock_guard guard(mu_);
      if (state_ == State::kExited)
        throw VmError(fmt::format("{}: QEMU exited during start ({}): {}", Describe(), exit_.detail,
                                  ReadTail(log, 20)));
    }
    std::error_code ec;
    if (fs::exists(dir / "qmp.sock", ec)) {
      try {
        auto qmp = std::make_unique<QmpClient>(dir / "qmp.sock", milliseconds(5000));
        std::lock_guard guard(mu_);
        qmp_ = std::move(qmp);
        timeline_.process_started = SinceStart();
        // QEMU made every chardev socket before its monitor answered. Its
        // umask leaves them 0755 (0700 with ours): make them 0600 as the
        // shim's own, root's only even if the 0700 directory were opened up.
        for (const auto& entry : fs::directory_iterator(dir, ec))
          if (entry.is_socket(ec)) fs::permissions(entry.path(), fs::perms::owner_read | fs::perms::owner_write, ec);
        break;
      } catch (const VmError& error) {
        last_error = error.what();
      }
    }
    if (Clock::now() > deadline) {
      Kill(ExitReason::kBootFailed, "QEMU did not open its monitor: " + last_error);
      WaitForExit(std::chrono::seconds(5));
      throw VmError(fmt::format("{}: QEMU did not open its monitor within 20 s ({}): {}", Describe(),
                                last_error, ReadTail(log, 20)));
    }
    std::this_thread::sleep_for(milliseconds(2));
  }
  spdlog::info("event=vm_process_started id={} ms={:.1f}", config_.id,
               timeline_.process_started->count() / 1000.0);
}

void QemuVm::WatchConsole() {
  const UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!inotify || ::inotify_add_watch(inotify.get(), console_log().c_str(), IN_MODIFY) < 0) return;
  char events[4096];
  for (;;) {
    std::error_code ec;
    if (fs::file_size(console_log(), ec) > 0 && !ec) {
      std::lock_guard lock(mu_);
      timeline_.kernel_started = SinceStart();
      spdlog::info("event=vm_console_first_byte id={} ms={:.1f}", config_.id,
                   timeline_.kernel_started->count() / 1000.0);
      break;
    }
    pollfd fds[2] = {{inotify.get(), POLLIN, 0}, {console_stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents) break;
    while (::read(inotify.get(), events, sizeof events) > 0) {
    }
  }
}

void QemuVm::WatchExit() {
  const pid_t virtiofsd = virtiofsd_.valid() ? static_cast<pid_t>(virtiofsd_.id()) : 0;
  WaitVmmWatchingHelper(static_cast<pid_t>(qemu_pid_), virtiofsd, [this, virtiofsd] {
    Kill(ExitReason::kCrashed, fmt::format("virtiofsd (pid {}) exited: the guest lost its share", virtiofsd));
  });
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(qemu_pid_), &info, WEXITED | WNOWAIT);
  } while (rc != 0 && errno == EINTR);
  const int wait_errno = rc == 0 ? 0 : errno;
  // Not reaped yet (WNOWAIT): the zombie's stat still holds its CPU time.
  const auto vmm_cpu = ProcessCpuTime(static_cast<pid_t>(qemu_pid_));

  // Events QEMU sent just before exiting (SHUTDOWN's reason) arrive before
  // the monitor connection closes.
  QmpClient* qmp = nullptr;
  {
    std::lock_guard lock(mu_);
    qmp = qmp_.get();
  }
  const auto qmp_deadline = Clock::now() + milliseconds(500);
  while (qmp && qmp->connected() && Clock::now() < qmp_deadline) std::this_thread::sleep_for(milliseconds(2));

  std::unique_lock lock(mu_);
  std::error_code ec;
  qemu_.wait(ec);
  const int status = qemu_.native_exit_code();
  qemu_reaped_ = true;
  QemuExitFacts facts;
  facts.requested = requested_exit_;
  facts.wait_errno = wait_errno;
  facts.status = status;
  facts.pid = qemu_pid_;
  if (auto shutdown = qmp ? qmp->LastEvent("SHUTDOWN") : std::nullopt)
    facts.shutdown_reason = shutdown->value("reason", std::string());
  facts.agent_ready = agent_ready_;
  facts.qemu_log_tail = ReadTail(config_.state_dir / "qemu.log", 5);
  facts.console_tail = ConsoleTail(20);
  exit_ = ClassifyQemuExit(facts);
  // Sockets go before anyone learns of the exit: a caller that saw the VM
  // end finds nothing of it left but the logs.
  for (const auto& socket : sockets_) {
    std::error_code ignored;
    fs::remove(socket, ignored);
  }
  state_ = State::kExited;
  spdlog::info("event=vm_exited id={} reason={} vmm_cpu_ms={} detail=\"{}\"", config_.id, ToString(exit_.reason),
               vmm_cpu ? vmm_cpu->count() : -1, exit_.detail.substr(0, exit_.detail.find('\n')));
  cv_.notify_all();
  lock.unlock();
  CleanupAfterExit();
}

void QemuVm::CleanupAfterExit() {
  std::error_code ec;
  if (virtiofsd_.valid() && virtiofsd_.running(ec)) {
    // It ends by itself when QEMU's vhost-user connection closes.
    if (!virtiofsd_.wait_for(milliseconds(500), ec)) virtiofsd_.terminate(ec);
  }
  for (const auto& socket : sockets_) fs::remove(socket, ec);
  if (!config_.socket_dir.empty()) fs::remove(config_.socket_dir, ec);  // only once empty
}

void QemuVm::WaitAgentReady() {
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kExited)
      throw VmError(fmt::format("{} has already ended ({}): {}", Describe(), ToString(exit_.reason), exit_.detail));
    if (state_ != State::kRunning) throw VmError(Describe() + ": WaitAgentReady() before Start()");
    if (agent_ready_) return;
  }
  auto channel = MakeAgentChannel(AgentTarget());
  auto stub = agent::v1::Agent::NewStub(channel);
  const auto deadline = start_time_ + config_.boot_timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (state_ == State::kExited)
        throw VmError(fmt::format("{} ended before its agent answered ({}): {}", Describe(),
                                  ToString(exit_.reason), exit_.detail));
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      const std::string tail = ConsoleTail(20);
      const std::string why = fmt::format("the agent did not answer within {} ms (accel={})",
                                          config_.boot_timeout.count(), kvm_ ? "kvm" : "tcg");
      Kill(ExitReason::kBootFailed, why);
      WaitForExit(std::chrono::seconds(10));
      throw VmError(fmt::format("{}: {}; last console lines:\n{}", Describe(), why, tail));
    }
    // The channel turns READY when the agent's HTTP/2 SETTINGS arrive, i.e.
    // when the agent serves; the Ping then proves the service answers. Short
    // waits keep the VM's death and the deadline noticed.
    const auto step = std::min(now + options_.ping_timeout, deadline);
    if (!channel->WaitForConnected(GrpcDeadline(step))) continue;
    grpc::ClientContext context;
    context.set_deadline(GrpcDeadline(std::min(Clock::now() + std::chrono::seconds(5), deadline)));
    agent::v1::PingRequest request;
    agent::v1::PingResponse response;
    const grpc::Status status = stub->Ping(&context, request, &response);
    if (status.ok()) break;
    spdlog::debug("event=vm_ping_failed id={} error=\"{}\"", config_.id, status.error_message());
    std::this_thread::sleep_for(milliseconds(20));
  }
  pid_t vmm = 0;
  {
    std::lock_guard lock(mu_);
    agent_ready_ = true;
    timeline_.agent_ready = SinceStart();
    channel_ = std::move(channel);
    vmm = qemu_pid_;
    // QEMU's CPU time: what the boot cost, whatever the host's load.
    const auto vmm_cpu = ProcessCpuTime(static_cast<pid_t>(qemu_pid_));
    spdlog::info("event=vm_agent_ready id={} ms={:.1f} vmm_cpu_ms={}", config_.id,
                 timeline_.agent_ready->count() / 1000.0, vmm_cpu ? vmm_cpu->count() : -1);
  }
  // The guest has booted: QEMU's copy of the boot files is not read again.
  // Not in a VM that may still be snapshotted (share_hotplug, booted cold):
  // a snapshot saved after the release did not restore on our kernel (the
  // restored agent never answered; not understood yet). A VM restored from
  // a snapshot releases as a cold one does.
  const bool may_be_snapshotted = options_.share_hotplug && options_.incoming_snapshot.empty();
  if (options_.release_boot_files && !may_be_snapshotted) {
    const BootFileRelease released = ReleaseBootFileMappings(vmm, {config_.kernel, config_.initrd});
    if (released.error.empty())
      spdlog::debug("event=vm_boot_files_released id={} bytes={}", config_.id, released.bytes);
    else
      spdlog::info("event=vm_boot_files_kept id={} error=\"{}\"", config_.id, released.error);
  }
}

std::string QemuVm::AgentTarget() const { return "unix://" + (SocketDir() / "agent.sock").string(); }

std::string QemuVm::DebugAgentTarget() const { return "unix://" + (SocketDir() / "debug.sock").string(); }

std::filesystem::path QemuVm::BulkStdioSocket() const {
  return options_.bulk_stdio_port ? SocketDir() / "stdio.sock" : std::filesystem::path();
}

std::shared_ptr<grpc::Channel> QemuVm::AgentChannel() const {
  std::lock_guard lock(mu_);
  return channel_;
}

void QemuVm::Kill(ExitReason reason, const std::string& detail) {
  std::lock_guard lock(mu_);
  if (state_ != State::kRunning || qemu_reaped_) return;
  if (!requested_exit_) requested_exit_ = ExitInfo{reason, detail};
  // Not yet reaped (the watcher reaps under mu_): the pid is still QEMU's.
  ::kill(qemu_pid_, SIGKILL);
}

void QemuVm::Terminate() {
  Kill(ExitReason::kTerminated, "terminated on request");
  WaitForExit(std::chrono::seconds(10));
}

void QemuVm::Stop(std::chrono::milliseconds timeout) {
  std::shared_ptr<grpc::Channel> channel;
  QmpClient* qmp = nullptr;
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kRunning) return;
    channel = channel_;
    qmp = qmp_.get();
  }
  const auto deadline = Clock::now() + timeout;
  bool asked = false;
  if (channel) {
    // The agent syncs and powers the guest off after answering.
    grpc::ClientContext context;
    context.set_deadline(GrpcDeadline(std::min(deadline, Clock::now() + std::chrono::seconds(2))));
    agent::v1::ShutdownRequest request;
    agent::v1::ShutdownResponse response;
    asked = agent::v1::Agent::NewStub(channel)->Shutdown(&context, request, &response).ok();
  }
  if (!asked && qmp) {
    try {
      qmp->Execute("system_powerdown");
    } catch (const VmError& error) {
      spdlog::debug("event=vm_powerdown_failed id={} error=\"{}\"", config_.id, error.what());
    }
  }
  const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  if (WaitForExit(std::max(remaining, milliseconds(0)))) return;

  spdlog::warn("event=vm_stop_timeout id={} timeout_ms={}", config_.id, timeout.count());
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kRunning && !requested_exit_)
      requested_exit_ = ExitInfo{ExitReason::kShutdown,
                                 fmt::format("the guest did not power off within {} ms; QEMU was told to quit",
                                             timeout.count())};
  }
  if (qmp) {
    try {
      qmp->Execute("quit", nullptr, milliseconds(1000));
    } catch (const VmError&) {
      // QEMU may close the monitor before answering.
    }
    if (WaitForExit(std::chrono::seconds(2))) return;
  }
  Kill(ExitReason::kTerminated, "killed: Stop() timed out");
  WaitForExit(std::chrono::seconds(10));
}

std::optional<ExitInfo> QemuVm::WaitForExit(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (state_ == State::kNew || state_ == State::kCreated) return ExitInfo{};
  if (!cv_.wait_for(lock, timeout, [this] { return state_ == State::kExited; })) return std::nullopt;
  return exit_;
}

ExitInfo QemuVm::exit_info() const {
  std::lock_guard lock(mu_);
  return exit_;
}

BootTimeline QemuVm::timeline() const {
  std::lock_guard lock(mu_);
  return timeline_;
}

std::filesystem::path QemuVm::console_log() const {
  return config_.debug_console ? config_.state_dir / "console.log" : fs::path();
}

std::int64_t QemuVm::vmm_pid() const {
  std::lock_guard lock(mu_);
  return state_ == State::kRunning ? qemu_pid_ : 0;
}

std::string QemuVm::ConsoleTail(std::size_t lines) const {
  return config_.debug_console ? ReadTail(console_log(), lines) : std::string();
}

bool QemuVm::WaitForConsoleText(std::string_view text, std::chrono::milliseconds timeout) {
  if (!config_.debug_console) return false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    bool ended;
    {
      std::lock_guard lock(mu_);
      ended = state_ == State::kExited;
    }
    std::ifstream in(console_log(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    if (content.find(text) != std::string::npos) return true;
    if (ended || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace uvmshim::uvm
