// uvm-agent: serves proto/agent.proto. See agent_server.h for the pieces.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <unistd.h>

#include <string_view>

#include "guest-agent/agent_server.h"
#include "guest-agent/container_init.h"
#include "guest-agent/listen_address.h"
#include "guest-agent/logging.h"

// Defined by the CMake lines that compile guest-agent/vm/*.cc into uvm-agent.
#ifdef UVMSHIM_AGENT_VM_CHANNELS
#include "guest-agent/vm/channels.h"
#include "guest-agent/vm/pid1.h"
#include "guest-agent/vm/vm_main.h"
#endif

namespace agent = uvmshim::agent;

int main(int argc, char** argv) {
  // The container init helper: the agent re-executes itself (container_init.h).
  if (argc >= 2 && std::string_view(argv[1]) == agent::kInitHelperArg) return agent::RunContainerInitHelper();
  // Few malloc arenas: with glibc's default each of the short-lived stream
  // threads' arenas keeps its peak's free memory (README Reliability, leak slopes).
  mallopt(M_ARENA_MAX, 2);
#ifdef UVMSHIM_AGENT_VM_CHANNELS
  // PID 1 of a utility VM: settings come from the kernel command line (vm/vm_main.h).
  if (agent::vm::IsPid1()) agent::vm::RunAsPid1();
#endif

  CLI::App app{"uvm-agent: the uvmshim guest agent (gRPC, proto/agent.proto)"};
  std::string listen;
  std::string log_level = "info";
  std::string cgroup_parent = "uvmshim";
  app.add_option("--listen", listen, "unix:///path, vsock://PORT or serial:///dev/vportNpM")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  int listen_fd = -1;
  app.add_option("--listen-fd", listen_fd,
                 "an inherited socket already bound at the unix --listen path and listening")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--cgroup-parent", cgroup_parent, "containers get cgroups <parent>/<id>; \"\" for none")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  CLI11_PARSE(app, argc, argv);

  try {
    agent::SetupLogging(log_level);
    agent::ListenAddress address = agent::ParseListenAddress(listen);
    if (listen_fd >= 0 && address.kind != agent::ListenAddress::Kind::kUnix)
      throw std::invalid_argument("--listen-fd needs a unix:// --listen address, got " + listen);
    agent::PrepareAgentProcess();
    agent::AgentOptions options;
    options.cgroup_parent = cgroup_parent;
    options.in_utility_vm = getpid() == 1;
    agent::AgentService service(options);
    std::unique_ptr<grpc::Server> server = agent::BuildServer(service);
    std::unique_ptr<agent::UnixListener> unix_listener;
#ifdef UVMSHIM_AGENT_VM_CHANNELS
    std::unique_ptr<agent::vm::ChannelListener> listener;
#endif
    switch (address.kind) {
      case agent::ListenAddress::Kind::kUnix: {
        auto adopt = [raw = server.get()](int fd) { agent::ServeOnConnectedFd(*raw, fd); };
        unix_listener = listen_fd >= 0 ? std::make_unique<agent::UnixListener>(
                                             address.path, uvmshim::UniqueFd(listen_fd), adopt)
                                       : std::make_unique<agent::UnixListener>(address.path, adopt);
        break;
      }
      case agent::ListenAddress::Kind::kVsock:
      case agent::ListenAddress::Kind::kSerial:
#ifdef UVMSHIM_AGENT_VM_CHANNELS
        listener = agent::vm::StartVmListener(address, [raw = server.get()](int fd) {
          agent::ServeOnConnectedFd(*raw, fd);
        });
        break;
#else
        spdlog::critical("event=listen_failed address={} error=\"not supported in this build\"", listen);
        return 2;
#endif
    }
    spdlog::info("event=listening address={} pid={}", agent::ToString(address), getpid());
    agent::WaitForShutdownRequest(service);
    unix_listener.reset();
#ifdef UVMSHIM_AGENT_VM_CHANNELS
    listener.reset();
#endif
    agent::StopAgent(service);
    agent::ExitAgentProcess(0);  // no ~Server: it would wait for the shim to hang up
  } catch (const std::exception& e) {
    spdlog::critical("event=fatal error={}", agent::LogQuote(e.what()));
    return 1;
  }
  return 0;
}
