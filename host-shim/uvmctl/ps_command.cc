#include "uvmctl/ps_command.h"

#include <signal.h>

#include <cstdio>
#include <ctime>

#include "sandbox_state.h"
#include "uvmctl/container_network.h"

namespace uvmshim::uvmctl {

CLI::App* AddPsCommand(CLI::App& app) { return app.add_subcommand("ps", "list containers"); }

int Ps() {
  std::printf("%-24s %-10s %-9s %-8s %-8s %-8s %-19s %s\n", "ID", "NAMESPACE", "ISOLATION", "STATUS",
              "SHIM", "HOST_PID", "CREATED", "ADDRESS");
  for (const auto& s : host::ListStates()) {
    bool shim_alive = s.shim_pid > 0 && ::kill(static_cast<pid_t>(s.shim_pid), 0) == 0;
    std::time_t created = s.created_unix;
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", std::gmtime(&created));
    const std::string address = s.ns == "uvmctl" ? ContainerAddress(s.id) : "-";
    std::printf("%-24s %-10s %-9s %-8s %-8lld %-8lld %-19s %s\n", s.id.c_str(), s.ns.c_str(),
                s.isolation.c_str(), shim_alive ? s.status.c_str() : "dead",
                static_cast<long long>(s.shim_pid), static_cast<long long>(s.host_pid), when, address.c_str());
  }
  return 0;
}

}  // namespace uvmshim::uvmctl
