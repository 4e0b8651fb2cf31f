#include "pool/pool_keeper.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "common/ids.h"
#include "common/unique_fd.h"
#include "paths.h"
#include "pool/pool_dir.h"
#include "pool/pool_socket.h"
#include "sandbox_share.h"
#include "uvm/qemu_vm.h"

namespace uvmshim::host::pool {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

UniqueFd Listen(const fs::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ::unlink(path.c_str());
  const mode_t old = ::umask(0077);  // 0600: only root may claim
  const int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(fd.get(), 8) != 0)
    throw std::runtime_error(fmt::format("listen on {}: {}", path.string(), std::strerror(errno)));
  return fd;
}

void WriteVmConf(const fs::path& dir, const PoolKey& key, pid_t qemu_pid) {
  WriteFileAtomic(dir / "vm.conf",
                  fmt::format("memory_mb={}\ncpus={}\nkeeper_pid={}\nqemu_pid={}\n", key.memory_mb, key.cpus,
                              ::getpid(), qemu_pid));
}

void SetState(const fs::path& dir, VmState state) {
  try {
    WriteFileAtomic(dir / "state", std::string(ToString(state)) + "\n");
  } catch (const std::exception& e) {
    spdlog::warn("state {}: {}", ToString(state), e.what());
  }
}

enum class Ending { kClaimedEnded, kDrained, kDiedIdle };

// The VM is ready and keeper.sock listens: serve until the VM has ended.
Ending Serve(uvm::QemuVm& vm, UniqueFd listener, const fs::path& socket_path, int signal_fd, const fs::path& dir) {
  int exit_pipe[2];
  if (::pipe2(exit_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2: " + std::string(std::strerror(errno)));
  UniqueFd exit_read(exit_pipe[0]), exit_write(exit_pipe[1]);
  std::thread watcher([&vm, fd = exit_write.get()] {
    while (!vm.WaitForExit(1h)) {
    }
    [[maybe_unused]] auto ignored = ::write(fd, "x", 1);
  });
  UniqueFd claim;
  bool drained = false, kill_sent = false;
  while (true) {
    pollfd fds[4] = {{exit_read.get(), POLLIN, 0},
                     {signal_fd, POLLIN, 0},
                     {listener ? listener.get() : -1, POLLIN, 0},
                     {claim && !kill_sent ? claim.get() : -1, POLLIN, 0}};
    if (::poll(fds, 4, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", std::strerror(errno));
      vm.Terminate();
      break;
    }
    if (fds[0].revents) break;  // the VM has ended
    if (fds[1].revents) {
      signalfd_siginfo info{};
      [[maybe_unused]] auto ignored = ::read(signal_fd, &info, sizeof info);
      spdlog::info("signal {}: ending the VM", info.ssi_signo);
      drained = !claim;
      vm.Terminate();
      continue;
    }
    if (fds[2].revents) {
      UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      const auto line = ReadLine(conn.get(), 5000).value_or("");
      const bool alive = vm.exit_info().reason == uvm::ExitReason::kRunning;
      if (line.starts_with("CLAIM ") && IsValidId(line.substr(6)) && !alive) {
        SendLine(conn.get(), "NO the VM has ended");
      } else if (line.starts_with("CLAIM ") && IsValidId(line.substr(6))) {
        // One claim ever: the listener goes before anyone else is answered.
        listener.reset();
        ::unlink(socket_path.c_str());
        if (!SendLine(conn.get(), fmt::format("OK {}", vm.vmm_pid()))) {
          spdlog::warn("claimer left before the answer: ending the VM");
          vm.Terminate();
          kill_sent = true;
          continue;
        }
        SetState(dir, VmState::kClaimed);
        spdlog::info("claimed by sandbox {}", line.substr(6));
        claim = std::move(conn);
      } else if (line == "DRAIN") {
        SendLine(conn.get(), "OK");
        listener.reset();
        ::unlink(socket_path.c_str());
        drained = true;
        SetState(dir, VmState::kEnding);
        vm.Terminate();
      } else {
        SendLine(conn.get(), "NO unknown request");
      }
      continue;
    }
    if (fds[3].revents) {
      // The claim's lifeline: KILL, or the claimer is gone (shim ended or killed).
      const auto line = ReadLine(claim.get(), 1000);
      if (!line || *line == "KILL") {
        spdlog::info("claimer {}: ending the VM", line ? "asked" : "gone");
        kill_sent = true;
        vm.Terminate();
      }
    }
  }
  watcher.join();
  const auto info = vm.exit_info();
  spdlog::info("VM ended: {} {}", uvm::ToString(info.reason), info.detail);
  if (claim) {
    std::string detail = info.detail;
    for (auto& c : detail)
      if (c == '\n') c = ' ';
    SendLine(claim.get(), fmt::format("EXIT {} {}", uvm::ToString(info.reason), detail));
    return Ending::kClaimedEnded;
  }
  return drained ? Ending::kDrained : Ending::kDiedIdle;
}

}  // namespace

int RunKeeper(const KeeperOptions& options) {
  ::umask(0077);
  if (::chdir("/") != 0) spdlog::warn("chdir /: {}", std::strerror(errno));
  const fs::path dir = fs::absolute(options.vm_dir).lexically_normal();
  PoolKey key;
  try {
    key = PoolKey::Parse(ReadSmallFile(dir / "key.conf"));
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", dir.string(), e.what());
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd signal_fd(::signalfd(-1, &set, SFD_CLOEXEC));
  WriteVmConf(dir, key, 0);

  int rc = 0;
  Ending ending = Ending::kDrained;
  const fs::path socket_path = KeeperSocketPath(dir);
  {
    std::optional<SandboxShare> share;
    std::unique_ptr<uvm::QemuVm> vm;
    try {
      share.emplace(dir / "share");
      uvm::VmConfig config;
      config.id = "pool-" + dir.filename().string();
      config.kernel = key.kernel;
      config.initrd = key.initrd;
      config.kernel_cmdline_extra = key.kernel_cmdline_extra;
      config.memory_mb = key.memory_mb;
      config.cpus = key.cpus;
      config.state_dir = dir;
      config.socket_dir = SocketDirFor(dir);
      config.debug_console = key.console_log;
      config.boot_timeout = std::chrono::seconds(key.boot_timeout_seconds);
      config.share_dir = share->dir();
      if (config.socket_dir != dir) fs::create_directories(config.socket_dir);
      vm = std::make_unique<uvm::QemuVm>(std::move(config));
      vm->Create();
      vm->Start();
      WriteVmConf(dir, key, static_cast<pid_t>(vm->vmm_pid()));
      vm->WaitAgentReady();
      vm->DropAgentChannel();  // the claimer makes its own connection
      UniqueFd listener = Listen(socket_path);
      SetState(dir, VmState::kReady);
      const auto ready = vm->timeline().agent_ready;
      spdlog::info("ready: agent_ready={}ms qemu_pid={}", ready ? ready->count() / 1000 : -1, vm->vmm_pid());
      ending = Serve(*vm, std::move(listener), socket_path, signal_fd.get(), dir);
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", dir.string(), e.what());
      rc = 1;
      std::error_code ignored;
      fs::copy_file(dir / "keeper.log", dir.parent_path() / "last-failure.log",
                    fs::copy_options::overwrite_existing, ignored);
    }
    SetState(dir, VmState::kEnding);
    ::unlink(socket_path.c_str());
    if (vm && vm->exit_info().reason == uvm::ExitReason::kRunning) vm->Terminate();
    vm.reset();
    share.reset();
  }
  KeeperLeftovers(dir);
  if (rc == 0 && ending == Ending::kDiedIdle) {
    spdlog::warn("the idle VM died: starting a replacement");
    try {
      FillPool(key, options.limits);
    } catch (const std::exception& e) {
      spdlog::error("refill: {}", e.what());
    }
  }
  return rc;
}

}  // namespace uvmshim::host::pool
