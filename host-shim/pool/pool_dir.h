// Warm utility VM pool (issue #15): where pooled VMs live on the host.
//
//   <RuntimeRoot>/pool/<key hash>/key.conf         what the VMs below were booted with
//   <RuntimeRoot>/pool/<key hash>/fill.lock        serialises refills (flock)
//   <RuntimeRoot>/pool/<key hash>/<vm id>/         one VM, owned by its keeper process:
//       state       booting | ready | claimed | ending
//       vm.conf     memory_mb, cpus, keeper_pid, qemu_pid
//       share/      the VM's virtiofs share (a shared mount point)
//       console.log qemu.log virtiofsd.log keeper.log
//   sockets (keeper.sock, agent.sock, ...) in SocketDirFor(<vm dir>)
//
// The key names a configuration: kernel and initrd (path, size, mtime, so a
// rebuilt image never hands out VMs of the old one), memory, vCPUs, kernel
// command line, console log.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace uvmshim::host {
struct SandboxConfig;
}

namespace uvmshim::host::pool {

struct PoolKey {
  std::filesystem::path kernel;
  std::filesystem::path initrd;
  unsigned memory_mb = 0;
  unsigned cpus = 0;
  std::string kernel_cmdline_extra;  // agent log level included
  bool console_log = true;
  unsigned boot_timeout_seconds = 120;

  // 16 hex digits over every field and the boot files' size and mtime.
  std::string Hash() const;
  std::string Serialize() const;  // key.conf: "name=value" lines
  static PoolKey Parse(const std::string& text);  // throws std::invalid_argument naming the line
};

// The key a sandbox with this configuration would boot (the same defaults as
// the cold path: <ImagesDir>/vmlinuz, initrd.img).
PoolKey KeyFor(const SandboxConfig& config);

std::filesystem::path PoolRoot();  // <RuntimeRoot>/pool
std::filesystem::path KeyDir(const PoolKey& key);

enum class VmState { kBooting, kReady, kClaimed, kEnding, kUnknown };
const char* ToString(VmState state);
VmState ParseVmState(const std::string& text);

struct PoolVm {
  std::filesystem::path dir;
  std::string id;
  VmState state = VmState::kUnknown;
  unsigned memory_mb = 0;
  pid_t keeper_pid = 0;
  pid_t qemu_pid = 0;
  bool keeper_alive = false;  // /proc/<keeper_pid> exists
};

// The VMs of one key dir (sorted by id); missing dir = none.
std::vector<PoolVm> ListVms(const std::filesystem::path& key_dir);
// Every key dir under PoolRoot().
std::vector<std::filesystem::path> ListKeyDirs();

// Small files written whole (temp + rename), so readers see old or new.
void WriteFileAtomic(const std::filesystem::path& path, const std::string& text);
std::string ReadSmallFile(const std::filesystem::path& path);  // "" when absent

}  // namespace uvmshim::host::pool
