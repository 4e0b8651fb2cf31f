#include "guest-agent/vm/pid1.h"

#include <cpuid.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "guest-agent/logging.h"
#include "guest-agent/vm/page_reporting.h"
#include "common/unique_fd.h"

namespace uvmshim::agent::vm {
namespace {

using Clock = std::chrono::steady_clock;

long ElapsedMs(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

[[noreturn]] void ThrowErrno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Mounts unless something is already mounted there (EBUSY).
void Mount(const char* source, const char* target, const char* type, unsigned long flags,
           const char* data = nullptr) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, flags, data) != 0 && errno != EBUSY)
    ThrowErrno(std::string("mount ") + type + " on " + target);
}

void Symlink(const char* target, const char* link) {
  if (::symlink(target, link) != 0 && errno != EEXIST) ThrowErrno(std::string("symlink ") + link);
}

// The kernel hands PID 1 /dev/console as fds 0-2 when it exists in the
// initramfs; make sure logging has somewhere to go either way.
void EnsureConsoleFds() {
  if (::fcntl(STDERR_FILENO, F_GETFD) != -1) return;
  const int fd = ::open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int target = 0; target <= 2; ++target)
    if (fd != target) ::dup2(fd, target);
  if (fd > 2) ::close(fd);
}

void EnableCgroupControllers() {
  const char* path = "/sys/fs/cgroup/cgroup.subtree_control";
  for (const char* controller : {"+cpu", "+memory", "+pids"}) {
    UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), controller, std::strlen(controller)) < 0)
      spdlog::warn("event=cgroup_controller_unavailable controller={} error={}", controller + 1,
                   LogQuote(std::strerror(errno)));
  }
}

void BringLoopbackUp() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) ThrowErrno("socket AF_INET for lo");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &request) != 0) ThrowErrno("SIOCGIFFLAGS lo");
  request.ifr_flags |= IFF_UP;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &request) != 0) ThrowErrno("SIOCSIFFLAGS lo");
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

bool IsPid1() { return ::getpid() == 1; }

VmSettings ReadVmSettings() {
  Mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  const std::string cmdline = ReadFile("/proc/cmdline");
  return ParseVmSettings(cmdline);
}

bool RunningOnHyperV() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  // The hypervisor bit, then the vendor leaf: "Microsoft Hv".
  __cpuid(1, eax, ebx, ecx, edx);
  if ((ecx & (1u << 31)) == 0) return false;
  __cpuid(0x40000000, eax, ebx, ecx, edx);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &ebx, 4);
  std::memcpy(vendor + 4, &ecx, 4);
  std::memcpy(vendor + 8, &edx, 4);
  return std::strcmp(vendor, "Microsoft Hv") == 0;
}

std::chrono::milliseconds GuestUptime() {
  timespec now{};
  ::clock_gettime(CLOCK_BOOTTIME, &now);
  return std::chrono::milliseconds(now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

ModuleLoadResult LoadModules(const std::filesystem::path& list_file) {
  ModuleLoadResult result;
  std::ifstream list(list_file);
  if (!list) {
    result.failed.push_back(list_file.string() + ": cannot open the module list");
    return result;
  }
  std::string path;
  while (std::getline(list, path)) {
    if (path.empty() || path[0] == '#') continue;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      result.failed.push_back(path + ": open: " + std::strerror(errno));
      continue;
    }
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST) {
      result.failed.push_back(path + ": " + std::strerror(errno));
      continue;
    }
    ++result.loaded;
  }
  return result;
}

void PrepareGuest(const VmSettings& settings) {
  const auto start = Clock::now();
  spdlog::info("event=pid1_start uptime_ms={}", GuestUptime().count());
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  Mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  Mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  EnsureConsoleFds();
  Mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  Symlink("pts/ptmx", "/dev/ptmx");
  Mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  Symlink("/proc/self/fd", "/dev/fd");
  Symlink("/proc/self/fd/0", "/dev/stdin");
  Symlink("/proc/self/fd/1", "/dev/stdout");
  Symlink("/proc/self/fd/2", "/dev/stderr");
  Mount("run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  Mount("tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
  EnableCgroupControllers();
  const auto mounts_done = ElapsedMs(start);

  if (settings.load_modules) {
    const auto modules_start = Clock::now();
    auto result = LoadModules(kModuleLoadOrder);
    if (RunningOnHyperV() && std::filesystem::exists(kHyperVModuleLoadOrder)) {
      auto hyperv = LoadModules(kHyperVModuleLoadOrder);
      result.loaded += hyperv.loaded;
      result.failed.insert(result.failed.end(), hyperv.failed.begin(), hyperv.failed.end());
    }
    for (const auto& failure : result.failed)
      spdlog::warn("event=module_load_failed module={}", LogQuote(failure));
    spdlog::info("event=modules_loaded count={} failed={} ms={}", result.loaded, result.failed.size(),
                 ElapsedMs(modules_start));
  }
  // After virtio_balloon registered (it resets the order on Linux 6.1).
  if (std::ifstream cmdline("/proc/cmdline"); cmdline) {
    std::stringstream text;
    text << cmdline.rdbuf();
    ApplyPageReportingOrder(text.str());
  }

  try {
    BringLoopbackUp();
  } catch (const std::system_error& error) {
    spdlog::warn("event=loopback_unavailable error={}", LogQuote(error.what()));
  }

  // The container rootfs is mounted by MountBootRootfs (boot_rootfs.h) after this:
  // its failure is reported to the host instead of ending the VM.
  if (!settings.share_tag.empty()) {
    const auto share_start = Clock::now();
    // nodev: a device node in a host directory must not open the guest's device of that number.
    Mount(settings.share_tag.c_str(), kGuestSharePath, "virtiofs", MS_NODEV);
    spdlog::info("event=share_mounted tag={} path={} ms={}", LogQuote(settings.share_tag), kGuestSharePath,
                 ElapsedMs(share_start));
  }
  spdlog::info("event=pid1_prepared mounts_ms={} total_ms={} uptime_ms={}", mounts_done,
               ElapsedMs(start), GuestUptime().count());
}

void PowerOff() {
  spdlog::info("event=power_off uptime_ms={}", GuestUptime().count());
  spdlog::default_logger()->flush();
  ::sync();
  ::reboot(RB_POWER_OFF);
  // Only reached when reboot() is refused; as PID 1 exiting panics the
  // kernel, which with panic=-1 and QEMU's -no-reboot ends the VM as well.
  spdlog::critical("event=power_off_failed error={}", LogQuote(std::strerror(errno)));
  ::_exit(1);
}

}  // namespace uvmshim::agent::vm
