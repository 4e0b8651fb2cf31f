#include "pool/pool_fill.h"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/unique_fd.h"
#include "paths.h"
#include "pool/pool_socket.h"

namespace uvmshim::host::pool {
namespace fs = std::filesystem;

namespace {

bool IsIdle(const PoolVm& vm) {
  return vm.state == VmState::kBooting || vm.state == VmState::kReady;
}

// Detached on purpose (setsid + double fork): the keeper must outlive the
// shim that started it (an unclaimed VM belongs to the pool). argv is built
// before fork; the child only calls async-signal-safe functions.
void SpawnKeeper(const fs::path& vm_dir, const PoolKey& key, const FillLimits& limits) {
  const std::string keeper = FindTool("uvm-pool-keeper", "UVMSHIM_POOL_KEEPER").string();
  std::vector<std::string> args = {keeper,
                                   "--dir", vm_dir.string(),
                                   "--size", std::to_string(limits.size),
                                   "--max-memory-mib", std::to_string(limits.max_memory_mib),
                                   "--snapshots", limits.snapshots ? "1" : "0"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log = (vm_dir / "keeper.log").string();

  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(fmt::format("pool: fork for the keeper: {}", std::strerror(errno)));
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null < 0 || out < 0) ::_exit(127);
    ::dup2(null, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::close_range(3, ~0U, 0);  // nothing of the caller (ttrpc sockets, pipes) reaches the keeper
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

bool NeverStarted(const fs::path& vm_dir) {
  std::error_code ec;
  const auto written = fs::last_write_time(vm_dir / "vm.conf", ec);
  return !ec && fs::file_time_type::clock::now() - written > std::chrono::minutes(1);
}

}  // namespace

unsigned IdleMemoryMib() {
  unsigned total = 0;
  for (const auto& key_dir : ListKeyDirs())
    for (const auto& vm : ListVms(key_dir))
      if (IsIdle(vm) && vm.keeper_alive) total += vm.memory_mb;
  return total;
}

std::vector<std::string> FillPool(const PoolKey& key, const FillLimits& limits) {
  const fs::path key_dir = KeyDir(key);
  fs::create_directories(key_dir);
  ::chmod(PoolRoot().c_str(), 0700);
  ::chmod(key_dir.c_str(), 0700);
  WriteFileAtomic(key_dir / "key.conf", key.Serialize());
  UniqueFd lock(::open((key_dir / "fill.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0)
    throw std::runtime_error(fmt::format("pool {}: fill.lock: {}", key_dir.string(), std::strerror(errno)));

  unsigned idle = 0;
  for (const auto& vm : ListVms(key_dir)) {
    // A dir whose keeper is gone (killed -9 with its VM) is left over: the
    // VM it named is dead and is never counted or handed out.
    if (!vm.keeper_alive && vm.keeper_pid > 0) {
      spdlog::warn("pool: VM {} lost its keeper (pid {}): removing its dir", vm.id, vm.keeper_pid);
      KeeperLeftovers(vm.dir);
      continue;
    }
    // A keeper writes its pid at once; a dir without one after a minute had
    // a keeper that never started (exec failed): it must not count as idle.
    if (vm.keeper_pid == 0 && NeverStarted(vm.dir)) {
      spdlog::warn("pool: VM {}: its keeper never started (see {}): removing its dir", vm.id,
                   (vm.dir / "keeper.log").string());
      KeeperLeftovers(vm.dir);
      continue;
    }
    if (IsIdle(vm)) ++idle;
  }
  std::vector<std::string> started;
  unsigned memory = IdleMemoryMib();
  while (idle < limits.size) {
    if (memory + key.memory_mb > limits.max_memory_mib) {
      spdlog::info("pool: not starting another VM: {} MiB idle + {} > max_memory_mib {}", memory, key.memory_mb,
                   limits.max_memory_mib);
      break;
    }
    const std::string id = RandomId();
    const fs::path vm_dir = key_dir / id;
    fs::create_directory(vm_dir);
    ::chmod(vm_dir.c_str(), 0700);
    WriteFileAtomic(vm_dir / "key.conf", key.Serialize());
    WriteFileAtomic(vm_dir / "vm.conf", fmt::format("memory_mb={}\n", key.memory_mb));
    WriteFileAtomic(vm_dir / "state", "booting\n");
    SpawnKeeper(vm_dir, key, limits);
    started.push_back(id);
    ++idle;
    memory += key.memory_mb;
  }
  return started;
}

std::string KeeperRequest(const fs::path& vm_dir, const std::string& line, int timeout_ms) {
  UniqueFd fd = ConnectKeeper(vm_dir);
  if (!SendLine(fd.get(), line))
    throw std::runtime_error(fmt::format("pool VM {}: send: {}", vm_dir.string(), std::strerror(errno)));
  return ReadLine(fd.get(), timeout_ms).value_or("");
}

unsigned DrainPool(const fs::path& key_dir) {
  std::vector<fs::path> dirs = key_dir.empty() ? ListKeyDirs() : std::vector<fs::path>{key_dir};
  unsigned asked = 0;
  for (const auto& dir : dirs) {
    for (const auto& vm : ListVms(dir)) {
      if (!IsIdle(vm) || !vm.keeper_alive) continue;
      try {
        KeeperRequest(vm.dir, "DRAIN");
        ++asked;
      } catch (const std::exception& e) {
        // A booting keeper has no socket yet: SIGTERM ends it the same way.
        if (::kill(vm.keeper_pid, SIGTERM) == 0) ++asked;
        else spdlog::warn("pool: drain {}: {}", vm.id, e.what());
      }
    }
  }
  return asked;
}

}  // namespace uvmshim::host::pool
