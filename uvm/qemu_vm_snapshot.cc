#include "uvm/qemu_vm_snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "uvm/pid_watch.h"
#include "uvm/qemu/vmm_process.h"
#include "uvm/qemu_vm.h"
#include "uvm/qmp_client.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kShareTag = "share";  // as the cold path's (qemu_vm_setup.cc)

}  // namespace

QemuDevice HotplugShareDevices(unsigned memory_mb) {
  return {{"-object", fmt::format("memory-backend-memfd,id=mem,size={}M,share=on", memory_mb), "-numa",
           "node,memdev=mem", "-device", fmt::format("pcie-root-port,id={},chassis=1", kShareHotplugPort)}};
}

void CheckSnapshotPath(const fs::path& file, const std::string& who) {
  const std::string text = file.string();
  if (!file.is_absolute())
    throw VmError(fmt::format("{}: snapshot path \"{}\": not absolute", who, text));
  for (char c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::strchr("/._+-", c) == nullptr)
      throw VmError(fmt::format("{}: snapshot path \"{}\": only [A-Za-z0-9/._+-] (QEMU passes it to a shell)", who,
                                text));
}

void QemuVm::SaveSnapshot(const fs::path& file, milliseconds timeout) {
  CheckSnapshotPath(file, Describe());
  QmpClient* qmp = nullptr;
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kRunning) throw VmError(Describe() + ": SaveSnapshot needs a running VM");
    qmp = qmp_.get();
  }
  // Made here so its mode is ours (0600) whatever QEMU's umask; `cat >`
  // then truncates and keeps it.
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw VmError(fmt::format("{}: snapshot {}: {}", Describe(), file.string(), std::strerror(errno)));
  ::close(fd);
  // Paused first: the whole RAM is copied in one pass with nothing running,
  // instead of pre-copy rounds that rely on dirty tracking while the guest
  // runs (a guest restored from a live-saved snapshot on our kernel crashed
  // once with its hrtimer tree corrupt, 2 of 4 pool tests at load ~8). The
  // VM is discarded after the save; its destination starts running because
  // the source does not send its run state (migration.store-global-state=off,
  // qemu_vm_setup.cc).
  qmp->Execute("stop");
  qmp->Execute("migrate", {{"uri", "exec:cat > " + file.string()}});
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto status = qmp->Execute("query-migrate");
    const std::string state = status.value("status", std::string());
    if (state == "completed") break;
    if (state == "failed" || state == "cancelled")
      throw VmError(fmt::format("{}: migration to {} {}: {}", Describe(), file.string(), state, status.dump()));
    if (Clock::now() > deadline) {
      qmp->Execute("migrate_cancel");
      throw VmError(fmt::format("{}: migration to {} did not complete within {} ms ({})", Describe(),
                                file.string(), timeout.count(), state));
    }
    // QEMU reports progress only when asked (no event without a capability).
    std::this_thread::sleep_for(milliseconds(20));
  }
  spdlog::info("event=vm_snapshot_saved id={} file={} bytes={}", config_.id, file.string(), fs::file_size(file));
}

void QemuVm::HotAddShare(const fs::path& share_dir) {
  if (!options_.share_hotplug) throw VmError(Describe() + ": HotAddShare needs QemuOptions::share_hotplug");
  const fs::path socket = SocketDir() / "virtiofs.sock";
  QmpClient* qmp = nullptr;
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kRunning) throw VmError(Describe() + ": HotAddShare needs a running VM");
    if (virtiofsd_.valid()) throw VmError(Describe() + ": the share was already added");
    qmp = qmp_.get();
    sockets_.push_back(socket);
  }
  // Spawned from the caller's thread: its parent-death signal follows that
  // thread, which must live as long as the VM (the pool keeper's main thread).
  auto virtiofsd = StartVirtiofsd({options_.virtiofsd, socket, share_dir, config_.state_dir / "virtiofsd.log"});
  {
    std::lock_guard lock(mu_);
    virtiofsd_ = std::move(virtiofsd);
    // As WatchExit does for a share given at boot: a guest whose share is
    // gone hangs every file access, so virtiofsd's death ends the VM.
    const auto helper = static_cast<pid_t>(virtiofsd_.id());
    share_watcher_ = std::thread([this, vmm = qemu_pid_, helper] {
      WaitVmmWatchingHelper(vmm, helper, [this, helper] {
        Kill(ExitReason::kCrashed, fmt::format("virtiofsd (pid {}) exited: the guest lost its share", helper));
      });
    });
  }
  const nlohmann::json chardev = {
      {"id", "vfs"},
      {"backend", {{"type", "socket"}, {"data", {{"addr", {{"type", "unix"}, {"data", {{"path", socket.string()}}}}},
                                                  {"server", false}}}}}};
  qmp->Execute("chardev-add", chardev);
  qmp->Execute("device_add", {{"driver", "vhost-user-fs-pci"},
                              {"id", "vfs0"},
                              {"chardev", "vfs"},
                              {"tag", kShareTag},
                              {"bus", kShareHotplugPort}});
  spdlog::info("event=vm_share_hot_added id={} dir={}", config_.id, share_dir.string());
}

}  // namespace uvmshim::uvm
