// The HCS backend of UtilityVm: a Linux utility VM run by the Windows Host
// Compute Service. The logic (states, timeouts, exit reasons, readiness,
// hot-plug) is here and platform-neutral; it talks to HCS only through
// HcsApi and to the guest only through the injected dialer, so it runs on
// Linux under test with a fake HcsApi. hcs_backend.h wires the real pieces
// (ComputeCore, hvsocket, Winsock relay) on Windows.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "uvm/hcs/guid.h"
#include "uvm/hcs/hcs_api.h"
#include "uvm/hcs/hcs_call.h"
#include "uvm/hcs/hcs_document.h"
#include "uvm/hcs/socket_stream.h"
#include "uvm/hcs/stream_relay.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {

// Copies the serial console (a named pipe HCS serves) into a log file while
// it lives. Windows implementation: console_pipe_win.*.
class ConsoleCapture {
 public:
  virtual ~ConsoleCapture() = default;  // stops and joins
};

struct HcsVmDeps {
  std::shared_ptr<HcsApi> api;
  // Opens a stream to the guest's vsock `port` in VM `runtime_id`
  // (Windows: hvsocket). Throws on failure.
  std::function<std::unique_ptr<net::ByteStream>(const Guid& runtime_id, std::uint32_t port,
                                                 std::chrono::milliseconds timeout)>
      dial_guest;
  // The local end of the agent relay (Windows and tests: TCP 127.0.0.1:0).
  std::function<std::unique_ptr<net::StreamListener>()> make_relay_listener;
  // Optional: refuses relay clients that are not this process (Windows).
  net::PeerFilter relay_peer_filter;
  // Optional: starts copying the console pipe into `log`; `on_first_byte`
  // is called once when the guest writes its first console byte.
  std::function<std::unique_ptr<ConsoleCapture>(const std::string& pipe,
                                                const std::filesystem::path& log,
                                                std::function<void()> on_first_byte)>
      capture_console;
  // Converts a host path to the Windows path string HCS gets. Default:
  // path.string() (right on Windows; tests keep Linux paths).
  std::function<std::string(const std::filesystem::path&)> host_path_string;
  // The host's build and logical processors (Windows: ProbeWindowsHost).
  // Required: the document depends on the build.
  std::function<HostInfo()> probe_host;
};

struct HcsVmOptions {
  std::string owner = "uvmshim";
  std::uint32_t agent_vsock_port = kDefaultAgentVsockPort;
  bool allow_overcommit = true;
  HcsCallTimeouts create_timeouts{};     // HcsCreateComputeSystem (hcsshim: 4 min)
  HcsCallTimeouts start_timeouts{};      // HcsStartComputeSystem (hcsshim: 4 min)
  HcsCallTimeouts control_timeouts{std::chrono::seconds(60), std::chrono::seconds(30)};
  std::chrono::milliseconds ready_probe_interval{100};
  std::chrono::milliseconds ready_probe_connect_timeout{1000};
  // After a terminate completed, how long the exit event may lag behind
  // before the exit is recorded without it.
  std::chrono::milliseconds exit_event_grace{5000};
};

class HcsVm final : public UtilityVm {
 public:
  HcsVm(VmConfig config, HcsVmOptions options, HcsVmDeps deps);
  ~HcsVm() override;

  void Create() override;
  void Start() override;
  void WaitAgentReady() override;
  std::string AgentTarget() const override;
  std::string DebugAgentTarget() const override { return ""; }
  void Stop(std::chrono::milliseconds timeout) override;
  void Terminate() override;
  std::optional<ExitInfo> WaitForExit(std::chrono::milliseconds timeout) override;
  ExitInfo exit_info() const override;
  BootTimeline timeline() const override;
  std::filesystem::path console_log() const override;
  std::int64_t vmm_pid() const override { return 0; }  // HCS has no VMM process of ours
  // The Windows build has no gRPC: the host dials AgentTarget() itself.
  std::shared_ptr<grpc::Channel> AgentChannel() const override { return nullptr; }

  // HCS specifics.
  // The VM's RuntimeId (hvsocket VmId); valid after Create().
  Guid runtime_id() const;
  // The create document sent to HCS (after Create()).
  std::string document() const;
  // How the rootfs is attached: a directory -> Plan9 share, *.vhd/*.vhdx -> SCSI.
  static RootfsKind RootfsKindFor(const std::filesystem::path& rootfs);
  std::string console_pipe() const;

  // Hot-plug (after Create()). Each grants the VM access to the path first.
  void AddPlan9Share(const std::string& name, const std::filesystem::path& host_dir,
                     bool read_only);
  void RemovePlan9Share(const std::string& name);
  void AddScsiDisk(unsigned lun, const std::filesystem::path& vhd, bool read_only);
  void RemoveScsiDisk(unsigned lun);
  // AddPlan9Share or AddScsiDisk, then where the guest finds it.
  GuestStorageLocation AttachStorage(const HostStorage& storage) override;

 private:
  enum class State { kNew, kCreated, kRunning, kExited, kClosed };

  class EventSink;
  friend class EventSink;

  // HcsModifyComputeSystem with `request` (hot-plug, hcs_vm_hotplug.cc).
  void ModifySystem(const std::string& request);

  void OnSystemExited(std::string_view event_data);
  void OnServiceDisconnect();
  void RecordExit(ExitReason reason, std::string detail);  // first one wins; needs mutex_
  void TerminateLocked(std::unique_lock<std::mutex>& lock, ExitReason requested_reason,
                       const std::string& why);
  void RequireState(std::initializer_list<State> allowed, std::string_view action) const;
  bool WaitExitedFor(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds timeout);
  std::string HostPath(const std::filesystem::path& path) const;
  std::string ConsoleTail() const;
  void CloseSystem();
  std::chrono::microseconds SinceStart() const;

  const VmConfig config_;
  const HcsVmOptions options_;
  const HcsVmDeps deps_;
  net::SocketRuntime socket_runtime_;

  // The operation lock: one HCS call sequence at a time (Create, Start,
  // Stop, Terminate, hot-plug). Never held by the event callback.
  std::mutex call_mutex_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable exited_cv_;
  State state_ = State::kNew;
  std::optional<ExitReason> requested_exit_;  // what Stop/Terminate/boot failure asked for
  ExitInfo exit_;
  bool agent_ready_ = false;
  Guid runtime_id_{};
  std::string document_;
  std::chrono::steady_clock::time_point start_time_{};
  BootTimeline timeline_;

  std::shared_ptr<EventSink> sink_;  // outlives system_ (closed first)
  std::unique_ptr<HcsSystem> system_;
  std::unique_ptr<net::StreamRelay> relay_;
  std::unique_ptr<ConsoleCapture> console_;
};

}  // namespace uvmshim::uvm::hcs
