#include "guest-agent/vm/vm_main.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cerrno>
#include <cstring>
#include <thread>
#include <memory>
#include <mutex>
#include <vector>

#include "guest-agent/agent_server.h"
#include "guest-agent/agent_service.h"
#include "guest-agent/bulk_output_port.h"
#include "guest-agent/listen_address.h"
#include "guest-agent/logging.h"
#include "guest-agent/vm/boot_rootfs.h"
#include "guest-agent/vm/channels.h"
#include "guest-agent/vm/pid1.h"
#include "guest-agent/vm/warm_up.h"

namespace uvmshim::agent::vm {

namespace {
constexpr const char* kDefaultListen = "serial:///dev/virtio-ports/agent";

// The bulk stdio port, or null (a warning): stdio then goes over gRPC only.
std::shared_ptr<BulkOutputPort> OpenBulkOutputPort(const std::string& path) {
  try {
    const auto device = ResolveVirtioPort(path, std::chrono::seconds(2));
    // Non-blocking, as the agent channel's: a blocking write waits (spinning,
    // in virtio_console) until the host took each buffer.
    UniqueFd port(::open(device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!port) throw std::runtime_error("open " + device.string() + ": " + std::strerror(errno));
    return std::make_shared<BulkOutputPort>(std::move(port), path);
  } catch (const std::exception& error) {
    spdlog::warn("event=bulk_stdio_unavailable port={} error={}", LogQuote(path), LogQuote(error.what()));
    return nullptr;
  }
}

}  // namespace

void RunAsPid1() {
  try {
    VmSettings settings = ReadVmSettings();
    SetupLogging(settings.log_level);
    PrepareGuest(settings);  // single-threaded: before PrepareAgentProcess
    // A rootfs that did not mount leaves the agent serving, with the reason.
    const std::string rootfs_error = MountBootRootfs(settings);
    PrepareAgentProcess();

    using Clock = std::chrono::steady_clock;
    auto ms_since = [](Clock::time_point start) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    };
    const auto service_start = Clock::now();
    AgentOptions options;
    options.in_utility_vm = true;
    options.guest_rootfs_error = rootfs_error;
    // Storage hot-added later (MountGuestStorage) needs the same drivers.
    if (settings.load_modules) options.load_storage_modules = LoadRootfsTransportModules;
    if (!settings.stdio_port.empty()) options.bulk_output_port = OpenBulkOutputPort(settings.stdio_port);
    AgentService service(options);
    const auto service_ms = ms_since(service_start);
    // A pooled VM pays its first container's cold start now, not its claimer.
    if (settings.warm_up) WarmUpContainerPath(service);
    const auto server_start = Clock::now();
    auto server = BuildServer(service);
    const auto server_ms = ms_since(server_start);
    const auto listeners_start = Clock::now();
    // Connections are adopted only while the server serves: once shutdown
    // begins, a host reconnecting is turned away instead of being added to a
    // server that is going away.
    std::mutex adopt_mu;
    grpc::Server* serving = server.get();
    auto adopt = [&adopt_mu, &serving](int fd) {
      std::lock_guard lock(adopt_mu);
      if (serving) {
        ServeOnConnectedFd(*serving, fd);
      } else {
        ::close(fd);
      }
    };
    if (settings.listen.empty()) settings.listen.push_back(kDefaultListen);
    // Declared after the server: destroyed (threads stopped) before it.
    std::vector<std::unique_ptr<ChannelListener>> listeners;
    for (const auto& text : settings.listen) listeners.push_back(StartVmListener(ParseListenAddress(text), adopt));
    spdlog::info("event=agent_serving listeners={} service_ms={} grpc_server_ms={} listeners_ms={} uptime_ms={}",
                 listeners.size(), service_ms, server_ms, ms_since(listeners_start), GuestUptime().count());

    WaitForShutdownRequest(service);
    {
      std::lock_guard lock(adopt_mu);
      serving = nullptr;
    }
    // No graceful gRPC server shutdown here: gRPC 1.51 crashes in
    // ActiveConnection::SendGoAway for connections adopted from fds, and the
    // VM is about to power off anyway. Containers go first (their ends
    // complete the calls in flight), the filesystems are synced, and only then
    // is Shutdown answered: a host that has the answer may end the VM without
    // waiting for the power-off (the kernel's shutdown path, slow under TCG),
    // the guest keeps nothing a kill could lose.
    spdlog::info("event=shutting_down");
    service.DestroyAllContainers();
    ::sync();
    service.AnswerShutdown(std::chrono::seconds(1));
    for (auto& listener : listeners) listener->Flush(std::chrono::milliseconds(500));
    PowerOff();  // before ~Server, which would run the crashing shutdown

  } catch (const std::exception& error) {
    spdlog::critical("event=fatal error={}", LogQuote(error.what()));
  }
  PowerOff();
}

}  // namespace uvmshim::agent::vm
