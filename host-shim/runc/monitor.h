// The container monitor: the process `create` forks and names in --pid-file.
// It owns the sandbox (the shim's Sandbox: a host agent or a utility VM),
// holds the container created-not-started, relays its stdio from the
// monitor's own inherited stdio (or a pty sent over --console-socket), serves
// <root>/<id>/control.sock (start, kill, exec, ps, update), and exits with
// the container's exit status after tearing the sandbox down.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "runc/cli.h"
#include "runc/host_hooks.h"
#include "sandbox_config.h"

namespace uvmshim::runc {

struct ContainerLaunch {
  GlobalOptions global;
  std::string id;
  std::filesystem::path bundle;
  nlohmann::json spec;  // without the host hooks (below): the agent never sees them
  HostHooks hooks;       // run by the monitor on the host (host_hooks.h)
  std::filesystem::path rootfs;  // absolute, on the host
  host::SandboxConfig config;
  std::filesystem::path console_socket;  // "" = relay the inherited stdio
  std::filesystem::path pid_file;
};

// Checks the bundle and configuration (bad input throws std::invalid_argument
// naming the field, leaving nothing behind).
ContainerLaunch PrepareLaunch(const CommandLine& cl);

// `create`: forks the monitor, waits until the container exists (or creating
// it failed: the monitor's error is printed and nothing is left), writes the
// pid file. Returns the process exit code.
int CreateContainer(const ContainerLaunch& launch);

}  // namespace uvmshim::runc
