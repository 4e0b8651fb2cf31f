#include "pool/pool_snapshot.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "agent.grpc.pb.h"
#include "common/unique_fd.h"
#include "paths.h"
#include "uvm/qemu/host_probe.h"
#include "uvm/qemu_vm.h"

namespace uvmshim::host::pool {
namespace fs = std::filesystem;
namespace pb = ::uvmshim::agent::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A restore reaches the agent in ~0.4 s (1.2 s at worst under load) where a
// boot takes 4-7 s: a snapshot whose agent is silent this long is broken.
constexpr auto kRestoreTimeout = std::chrono::seconds(60);
constexpr auto kSaveTimeout = std::chrono::seconds(180);

std::string FileIdentity(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path.string() + ":missing";
  return fmt::format("{}:{}:{}.{}", path.string(), st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

long MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// Snapshots are large (~110 MiB for 256 MiB guests, resident when the runtime
// root is a tmpfs): one whose key's image has changed since (its dir name is
// no longer its key's hash) can never be used again and goes.
void RemoveStaleSnapshots() {
  for (const auto& key_dir : ListKeyDirs()) {
    if (!fs::exists(key_dir / "snapshot.bin")) continue;
    try {
      if (PoolKey::Parse(ReadSmallFile(key_dir / "key.conf")).Hash() == key_dir.filename().string()) continue;
    } catch (const std::exception&) {
      // An unreadable key names nothing that runs: its snapshot goes too.
    }
    std::error_code ignored;
    fs::remove(key_dir / "snapshot.id", ignored);
    fs::remove(key_dir / "snapshot.bin", ignored);
    spdlog::info("event=pool_snapshot_removed dir={} reason=\"its image changed\"", key_dir.string());
  }
}

uvm::VmConfig BaseConfig(const PoolKey& key, const fs::path& dir) {
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
  return config;
}

std::unique_ptr<uvm::QemuVm> StartVm(uvm::VmConfig config, uvm::QemuOptions options,
                                     const std::function<void(pid_t)>& spawned) {
  if (config.socket_dir != config.state_dir) fs::create_directories(config.socket_dir);
  auto vm = std::make_unique<uvm::QemuVm>(std::move(config), std::move(options));
  vm->Create();
  vm->Start();
  spawned(static_cast<pid_t>(vm->vmm_pid()));
  vm->WaitAgentReady();
  return vm;
}

struct SnapshotFile {
  fs::path path;
  ino_t inode = 0;
};

class KeySnapshot {
 public:
  KeySnapshot(const PoolKey& key, fs::path key_dir)
      : key_(key), key_dir_(std::move(key_dir)), identity_(SnapshotIdentity(key)) {}

  // The snapshot as it is now, if it was made from what runs now.
  // Its recorded size catches a file cut short; the content itself is not
  // checksummed (a restore that breaks is discarded: StartPoolVm).
  std::optional<SnapshotFile> Usable() const {
    struct stat st {};
    if (::stat(File().c_str(), &st) != 0 || st.st_size == 0) return std::nullopt;
    if (ReadSmallFile(key_dir_ / "snapshot.id") != IdFor(st.st_size)) return std::nullopt;
    return SnapshotFile{File(), st.st_ino};
  }

  // Boots a VM without the share and migrates it to the snapshot, unless
  // another keeper did while this one waited for the lock.
  SnapshotFile Make(const fs::path& vm_dir, const std::function<void(pid_t)>& spawned) {
    UniqueFd lock = Lock();
    if (auto ready = Usable()) return *ready;
    const auto started = Clock::now();
    uvm::QemuOptions options;
    options.share_hotplug = true;
    auto vm = StartVm(BaseConfig(key_, vm_dir), options, spawned);
    vm->DropAgentChannel();  // nothing but the readiness Ping ever reached the agent
    const fs::path temp = key_dir_ / fmt::format("snapshot.bin.tmp-{}", ::getpid());
    std::error_code ignored;
    fs::remove(temp, ignored);
    try {
      vm->SaveSnapshot(temp, kSaveTimeout);
    } catch (...) {
      fs::remove(temp, ignored);
      throw;
    }
    vm->Terminate();
    vm.reset();
    // The id goes first and comes back last: readers never pair a new file with an old id.
    fs::remove(key_dir_ / "snapshot.id", ignored);
    fs::rename(temp, File());
    WriteFileAtomic(key_dir_ / "snapshot.id", IdFor(static_cast<off_t>(fs::file_size(File()))) + "\n");
    spdlog::info("event=pool_snapshot_made file={} bytes={} ms={}", File().string(), fs::file_size(File()),
                 MillisSince(started));
    RemoveStaleSnapshots();
    auto made = Usable();
    if (!made) throw std::runtime_error("the snapshot just made is not usable: " + File().string());
    return *made;
  }

  // Removes `bad` unless another keeper has replaced it meanwhile.
  void Discard(const SnapshotFile& bad, const std::string& why) {
    UniqueFd lock = Lock();
    struct stat st {};
    if (::stat(bad.path.c_str(), &st) != 0 || st.st_ino != bad.inode) return;
    spdlog::warn("event=pool_snapshot_discarded file={} reason=\"{}\"", bad.path.string(), why);
    std::error_code ignored;
    fs::remove(key_dir_ / "snapshot.id", ignored);
    fs::remove(bad.path, ignored);
  }

 private:
  fs::path File() const { return key_dir_ / "snapshot.bin"; }
  std::string IdFor(off_t size) const { return fmt::format("{}\nbytes={}", identity_, size); }
  UniqueFd Lock() const {
    UniqueFd fd(::open((key_dir_ / "snapshot.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw std::runtime_error(fmt::format("{}/snapshot.lock: {}", key_dir_.string(), std::strerror(errno)));
    while (::flock(fd.get(), LOCK_EX) != 0)
      if (errno != EINTR) throw std::runtime_error(fmt::format("flock snapshot.lock: {}", std::strerror(errno)));
    return fd;
  }

  const PoolKey& key_;
  const fs::path key_dir_;
  const std::string identity_;
};

void MountShare(uvm::QemuVm& vm) {
  auto stub = pb::Agent::NewStub(vm.AgentChannel());
  pb::MountGuestStorageRequest request;
  request.mutable_virtiofs()->set_tag("share");
  request.set_target(uvm::kGuestSharePath);
  pb::MountGuestStorageResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  const auto status = stub->MountGuestStorage(&context, request, &response);
  if (!status.ok()) throw std::runtime_error("mount the share in the guest: " + status.error_message());
}

std::unique_ptr<uvm::QemuVm> Restore(const PoolKey& key, const fs::path& vm_dir, const fs::path& share_dir,
                                     const SnapshotFile& snapshot, const std::function<void(pid_t)>& spawned) {
  uvm::VmConfig config = BaseConfig(key, vm_dir);
  config.boot_timeout = std::min<std::chrono::milliseconds>(config.boot_timeout, kRestoreTimeout);
  uvm::QemuOptions options;
  options.share_hotplug = true;
  options.incoming_snapshot = snapshot.path;
  auto vm = StartVm(std::move(config), options, spawned);
  vm->HotAddShare(share_dir);
  MountShare(*vm);
  return vm;
}

}  // namespace

std::string SnapshotIdentity(const PoolKey& key) {
  std::string identity = "format=1\n" + key.Serialize();
  identity += "boot_files=" + FileIdentity(key.kernel) + "|" + FileIdentity(key.initrd) + "\n";
  const auto qemu = uvm::FindInPath(uvm::QemuOptions().qemu_binary);
  identity += "qemu=" + (qemu ? FileIdentity(*qemu) : std::string("missing")) + "\n";
  identity += "keeper=" + FileIdentity(fs::read_symlink("/proc/self/exe"));
  return identity;
}

StartedVm StartPoolVm(const PoolKey& key, const fs::path& vm_dir, const fs::path& share_dir, bool use_snapshots,
                      const std::function<void(pid_t)>& spawned) {
  const auto started = Clock::now();
  if (use_snapshots) {
    KeySnapshot snapshot(key, vm_dir.parent_path());
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::optional<SnapshotFile> file;
      try {
        file = snapshot.Usable();
        if (!file) file = snapshot.Make(vm_dir, spawned);
        auto vm = Restore(key, vm_dir, share_dir, *file, spawned);
        spdlog::info("event=pool_vm_ready origin=snapshot ms={}", MillisSince(started));
        return {std::move(vm), "snapshot"};
      } catch (const std::exception& e) {
        spdlog::warn("event=pool_snapshot_failed attempt={} error=\"{}\"", attempt + 1, e.what());
        if (file) snapshot.Discard(*file, e.what());
      }
    }
    spdlog::warn("snapshots failed twice: booting cold");
  }
  uvm::VmConfig config = BaseConfig(key, vm_dir);
  config.share_dir = share_dir;
  auto vm = StartVm(std::move(config), {}, spawned);
  spdlog::info("event=pool_vm_ready origin=cold ms={}", MillisSince(started));
  return {std::move(vm), "cold"};
}

}  // namespace uvmshim::host::pool
