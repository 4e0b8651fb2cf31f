#include "pool/pooled_vm.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "agent.grpc.pb.h"
#include "paths.h"
#include "pool/pool_fill.h"
#include "pool/pool_socket.h"
#include "sandbox_config.h"
#include "uvm/agent_channel.h"
#include "uvm/serial_connect.h"

namespace uvmshim::host::pool {
namespace fs = std::filesystem;
namespace pb = ::uvmshim::agent::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string RandomBytes(std::size_t count) {
  std::string bytes(count, '\0');
  std::size_t done = 0;
  while (done < count) {
    const ssize_t n = ::getrandom(bytes.data() + done, count - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(fmt::format("getrandom: {}", std::strerror(errno)));
    done += static_cast<std::size_t>(n);
  }
  return bytes;
}

std::string RandomHex(std::size_t digits) {
  std::string out;
  for (unsigned char c : RandomBytes(digits / 2)) out += fmt::format("{:02x}", c);
  return out;
}

long MillisSince(Clock::time_point started) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
}

uvm::ExitReason ParseReason(const std::string& text) {
  for (auto reason : {uvm::ExitReason::kShutdown, uvm::ExitReason::kTerminated, uvm::ExitReason::kCrashed,
                      uvm::ExitReason::kBootFailed})
    if (text == uvm::ToString(reason)) return reason;
  return uvm::ExitReason::kCrashed;
}

// A claimed pool VM, seen through its keeper's connection.
class PooledVm final : public uvm::UtilityVm {
 public:
  PooledVm(UniqueFd lifeline, fs::path vm_dir, std::int64_t qemu_pid, std::string sandbox_id,
           std::chrono::milliseconds timeout)
      : lifeline_(std::move(lifeline)),
        vm_dir_(std::move(vm_dir)),
        sockets_(SocketDirFor(vm_dir_)),
        qemu_pid_(qemu_pid),
        sandbox_id_(std::move(sandbox_id)),
        timeout_(timeout),
        claimed_at_(Clock::now()) {
    watcher_ = std::thread([this] { Watch(); });
  }
  ~PooledVm() override {
    channel_.reset();
    ::shutdown(lifeline_.get(), SHUT_RDWR);  // the keeper kills the VM
    watcher_.join();
    WaitForExit(30s);
  }

  void Create() override {}
  void Start() override {}
  // Idempotent: ClaimWarmVm calls it before handing the VM out.
  void WaitAgentReady() override {
    if (channel_) return;
    try {
      channel_ = uvm::ConnectSerialChannel(AgentTarget(), timeout_, uvm::AgentChannelArguments());
      auto stub = pb::Agent::NewStub(channel_);
      pb::SetIdentityRequest request;
      request.set_entropy(RandomBytes(64));
      if (sandbox_id_.size() <= 64) request.set_hostname(sandbox_id_);
      request.set_machine_id(RandomHex(32));
      // A VM restored from a memory snapshot wakes with the snapshot's clock.
      request.set_realtime_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
      pb::SetIdentityResponse response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 30s);
      const auto status = stub->SetIdentity(&context, request, &response);
      if (!status.ok())
        throw uvm::VmError(fmt::format("pool VM {}: SetIdentity: {}", vm_dir_.string(), status.error_message()));
    } catch (const uvm::VmError&) {
      throw;
    } catch (const std::exception& e) {
      throw uvm::VmError(fmt::format("pool VM {}: agent: {}", vm_dir_.string(), e.what()));
    }
    std::lock_guard lock(mu_);
    timeline_.agent_ready = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - claimed_at_);
  }
  std::string AgentTarget() const override { return "unix://" + (sockets_ / "agent.sock").string(); }
  std::shared_ptr<grpc::Channel> AgentChannel() const override { return channel_; }
  std::string DebugAgentTarget() const override { return "unix://" + (sockets_ / "debug.sock").string(); }
  // Absent when the keeper's QEMU had no port: stdio then goes over gRPC.
  fs::path BulkStdioSocket() const override {
    std::error_code ec;
    fs::path socket = sockets_ / "stdio.sock";
    return fs::exists(socket, ec) ? socket : fs::path();
  }
  void Stop(std::chrono::milliseconds timeout) override {
    if (!WaitForExit(timeout)) Terminate();
  }
  void Terminate() override {
    {
      std::lock_guard lock(mu_);
      if (exit_.reason != uvm::ExitReason::kRunning) return;
    }
    SendLine(lifeline_.get(), "KILL");
    if (!WaitForExit(30s)) ::shutdown(lifeline_.get(), SHUT_RDWR);
    WaitForExit(30s);
  }
  std::optional<uvm::ExitInfo> WaitForExit(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return exit_.reason != uvm::ExitReason::kRunning; })) return std::nullopt;
    return exit_;
  }
  uvm::ExitInfo exit_info() const override {
    std::lock_guard lock(mu_);
    return exit_;
  }
  uvm::BootTimeline timeline() const override {
    std::lock_guard lock(mu_);
    return timeline_;
  }
  fs::path console_log() const override { return vm_dir_ / "console.log"; }
  std::int64_t vmm_pid() const override { return qemu_pid_; }

 private:
  // The keeper writes one EXIT line when the VM has ended, then closes.
  void Watch() {
    uvm::ExitInfo info{uvm::ExitReason::kCrashed, "the pool keeper ended without a word"};
    while (auto line = ReadLine(lifeline_.get(), -1)) {
      if (line->starts_with("EXIT ")) {
        const std::string rest = line->substr(5);
        const auto space = rest.find(' ');
        info.reason = ParseReason(rest.substr(0, space));
        info.detail = space == std::string::npos ? "" : rest.substr(space + 1);
      }
    }
    std::lock_guard lock(mu_);
    exit_ = info;
    cv_.notify_all();
  }

  UniqueFd lifeline_;
  const fs::path vm_dir_;
  const fs::path sockets_;
  const std::int64_t qemu_pid_;
  const std::string sandbox_id_;
  const std::chrono::milliseconds timeout_;
  const Clock::time_point claimed_at_;
  std::shared_ptr<grpc::Channel> channel_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uvm::ExitInfo exit_;
  uvm::BootTimeline timeline_;
  std::thread watcher_;
};

// One claim attempt on one VM: the keeper answers the first CLAIM only.
std::optional<std::pair<UniqueFd, std::int64_t>> TryClaim(const PoolVm& vm, const std::string& sandbox_id) {
  try {
    UniqueFd fd = ConnectKeeper(vm.dir);
    if (!SendLine(fd.get(), "CLAIM " + sandbox_id)) return std::nullopt;
    const auto answer = ReadLine(fd.get(), 10000);
    if (!answer || !answer->starts_with("OK ")) return std::nullopt;
    return std::make_pair(std::move(fd), std::stoll(answer->substr(3)));
  } catch (const std::exception& e) {
    spdlog::debug("pool: claim {}: {}", vm.id, e.what());
    return std::nullopt;
  }
}

}  // namespace

std::optional<ClaimedVm> ClaimWarmVm(const PoolKey& key, const PoolConfig& config, const std::string& sandbox_id) {
  std::optional<ClaimedVm> claimed;
  const fs::path key_dir = KeyDir(key);
  for (const auto& vm : ListVms(key_dir)) {
    if (vm.state != VmState::kReady || !vm.keeper_alive) continue;
    const auto claim_started = Clock::now();
    auto claim = TryClaim(vm, sandbox_id);
    if (!claim) continue;
    spdlog::debug("event=pool_claim vm={} ms={}", vm.id, MillisSince(claim_started));
    auto pooled = std::make_unique<PooledVm>(std::move(claim->first), vm.dir, claim->second, sandbox_id,
                                             std::chrono::seconds(key.boot_timeout_seconds));
    try {
      // A VM that died just before the claim fails here and is dropped
      // (its keeper cleans up): it is never handed out.
      pooled->WaitAgentReady();
    } catch (const std::exception& e) {
      spdlog::warn("pool: claimed VM {} is not usable, trying the next: {}", vm.id, e.what());
      continue;
    }
    spdlog::info("pool: sandbox {} claimed warm VM {} (qemu pid {})", sandbox_id, vm.id, claim->second);
    spdlog::debug("event=pool_identity_set vm={} ms={}", vm.id, MillisSince(claim_started));
    claimed = ClaimedVm{std::move(pooled), vm.dir / "share"};
    break;
  }
  if (!claimed) spdlog::info("pool: no warm VM ready for sandbox {} (key {}): cold boot", sandbox_id, key.Hash());
  const auto fill_started = Clock::now();
  try {
    FillPool(key, FillLimits{config.size, config.max_memory_mib, config.snapshot});
    spdlog::debug("event=pool_refill_spawned ms={}", MillisSince(fill_started));
  } catch (const std::exception& e) {
    spdlog::warn("pool: refill: {}", e.what());
  }
  return claimed;
}

}  // namespace uvmshim::host::pool
