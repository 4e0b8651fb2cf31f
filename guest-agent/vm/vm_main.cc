#include "guest-agent/vm/vm_main.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <vector>

#include "guest-agent/agent_server.h"
#include "guest-agent/agent_service.h"
#include "guest-agent/listen_address.h"
#include "guest-agent/logging.h"
#include "guest-agent/vm/channels.h"
#include "guest-agent/vm/pid1.h"

namespace uvmshim::agent::vm {

namespace {
constexpr const char* kDefaultListen = "serial:///dev/virtio-ports/agent";
}

void RunAsPid1() {
  std::vector<std::unique_ptr<ChannelListener>> listeners;
  try {
    VmSettings settings = ReadVmSettings();
    SetupLogging(settings.log_level);
    PrepareGuest(settings);  // single-threaded: before PrepareAgentProcess
    PrepareAgentProcess();

    AgentOptions options;
    options.in_utility_vm = true;
    AgentService service(options);
    auto server = BuildServer(service);
    if (settings.listen.empty()) settings.listen.push_back(kDefaultListen);
    for (const auto& text : settings.listen) {
      const ListenAddress address = ParseListenAddress(text);
      listeners.push_back(StartVmListener(address, [raw = server.get()](int fd) { ServeOnConnectedFd(*raw, fd); }));
    }
    spdlog::info("event=agent_serving listeners={} uptime_ms={}", listeners.size(), GuestUptime().count());
    ServeUntilShutdown(service, *server);
    // The Shutdown answer must reach the host before the VM is gone.
    for (auto& listener : listeners) listener->Flush(std::chrono::milliseconds(500));
  } catch (const std::exception& error) {
    spdlog::critical("event=fatal error={}", LogQuote(error.what()));
  }
  listeners.clear();
  PowerOff();
}

}  // namespace uvmshim::agent::vm
