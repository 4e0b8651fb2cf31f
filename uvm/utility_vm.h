// The utility VM manager's one interface. Backends: QEMU (Linux host, KVM or
// TCG) in qemu_vm.*, HCS (Windows host) in hcs/. Platform-neutral: no gRPC,
// no POSIX or Win32 types here, so the Windows cross build shares it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "uvm/guest_storage.h"

// Declared only: this header stays buildable without gRPC (the Windows build).
namespace grpc {
class Channel;
}  // namespace grpc

namespace uvmshim::uvm {

// Thrown for every failure; what() names the operation and the cause.
class VmError : public Error {
 public:
  explicit VmError(std::string message, ErrorCode code = ErrorCode::kInternal) : Error(code, std::move(message)) {}
};

// One network card of the VM (a hyperv pod's interface, issue #11).
struct VmNic {
  std::string mac;   // "02:42:0a:58:00:05": the pod interface's MAC
  unsigned mtu = 0;  // 0 = the device's default
  // QEMU: an open tap device (host-shim/netns/) the VMM inherits; it must stay
  // open until Start() returned (the caller closes its copy then).
  int tap_fd = -1;
};

struct VmConfig {
  std::string id;                      // unique per host; names sockets/logs
  std::filesystem::path kernel;        // vmlinuz
  std::filesystem::path initrd;        // initrd.img with uvm-agent as /init
  std::string kernel_cmdline_extra;    // appended to the backend's defaults
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  std::filesystem::path state_dir;     // private (0700) dir for sockets, logs
  // Private (0700) dir for the Unix sockets when state_dir is too long for
  // them (sun_path holds 107 bytes); empty = state_dir.
  std::filesystem::path socket_dir;
  bool debug_console = true;           // serial console captured to a log
  // HCS only: host directory (or VHD) exported as the container rootfs.
  std::filesystem::path rootfs_dir;
  // QEMU: host directory shared live with the guest (one virtiofsd, tag
  // "share"), mounted by the guest's PID 1 at kGuestSharePath. The shim puts
  // each container's rootfs and bind-mount sources under it
  // (host-shim/sandbox_share.h). Empty = nothing shared.
  std::filesystem::path share_dir;
  std::chrono::milliseconds boot_timeout{std::chrono::seconds(120)};
  std::vector<VmNic> nics;  // none: the VM has no network device
  // QEMU: a third virtio-serial port for bulk stdio (QemuOptions::bulk_stdio_port).
  bool bulk_stdio_port = false;
};

// Where VmConfig::rootfs_dir appears inside the guest (the agent mounts the
// share there at boot): the host passes it as CreateContainerRequest.rootfs_path.
inline constexpr const char* kGuestRootfsPath = "/run/rootfs";
// Where VmConfig::share_dir appears inside the guest.
inline constexpr const char* kGuestSharePath = "/run/share";

enum class ExitReason {
  kRunning,         // has not exited
  kShutdown,        // the guest powered off (agent Shutdown) or Stop() ended it
  kTerminated,      // Terminate() killed it
  kCrashed,         // the VM process/system died without being asked
  kBootFailed,      // never reached a ready agent (timeout or early death)
};

const char* ToString(ExitReason reason);

struct ExitInfo {
  ExitReason reason = ExitReason::kRunning;
  std::string detail;  // human readable: signal, HRESULT, console tail...
};

// Phase times of one boot, measured from Start(); absent when not observed.
struct BootTimeline {
  std::optional<std::chrono::microseconds> process_started;  // VMM running
  std::optional<std::chrono::microseconds> kernel_started;   // first console byte
  std::optional<std::chrono::microseconds> agent_ready;      // Ping answered
};

class UtilityVm {
 public:
  virtual ~UtilityVm() = default;  // terminates a VM that still runs

  // Validates the config and boot files and prepares resources; throws
  // VmError before anything is started.
  virtual void Create() = 0;
  // Starts the VM; returns once the VMM runs (the guest may still boot).
  virtual void Start() = 0;
  // Blocks until the agent answers a Ping or the boot timeout/VM death; on
  // failure throws VmError carrying the reason and the console log's tail.
  virtual void WaitAgentReady() = 0;
  // gRPC target string the host uses to reach the agent, e.g.
  // "unix:///run/uvmshim/ID/agent.sock" (a backend may run a relay for it).
  virtual std::string AgentTarget() const = 0;
  // The host's one channel to the agent, valid after WaitAgentReady(): the
  // connection that proved readiness (a virtio-serial port carries one
  // connection at a time), made by MakeAgentChannel (uvm/agent_channel.h).
  // Null where the host has no gRPC (HCS in the Windows build).
  virtual std::shared_ptr<grpc::Channel> AgentChannel() const = 0;
  // A second agent endpoint for debugging tools (uvmctl console); "" if none.
  virtual std::string DebugAgentTarget() const = 0;
  // Graceful: asks the guest to power off, terminates after the timeout.
  virtual void Stop(std::chrono::milliseconds timeout) = 0;
  // Forced and immediate.
  virtual void Terminate() = 0;
  // Waits for the VM to end; nullopt on timeout.
  virtual std::optional<ExitInfo> WaitForExit(std::chrono::milliseconds timeout) = 0;
  virtual ExitInfo exit_info() const = 0;
  virtual BootTimeline timeline() const = 0;
  // The serial console log file (empty path when there is none).
  virtual std::filesystem::path console_log() const = 0;
  // Host process id of the VMM (0 when there is no such process, e.g. HCS).
  virtual std::int64_t vmm_pid() const = 0;
  // Hot-adds host storage to the running VM and says where the guest finds
  // it (the agent's MountGuestStorage mounts it: guest_storage_mount.h).
  // Default: kUnimplemented (QEMU shares the pod through virtiofs instead).
  virtual GuestStorageLocation AttachStorage(const HostStorage& storage);
  // The host end of the bulk stdio port (guest-agent/bulk_output_port.h):
  // a Unix socket the VMM listens on, or an empty path when the VM has none
  // (then every stream goes over gRPC).
  virtual std::filesystem::path BulkStdioSocket() const { return {}; }
};

}  // namespace uvmshim::uvm
