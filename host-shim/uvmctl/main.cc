// uvmctl: the command line for people. `run` starts a container in a utility
// VM (--isolation=hyperv, the default) or on the host (--isolation=process)
// through the same agent API, relays its stdio and exits with its status.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "agent_client.h"
#include "oci_spec.h"
#include "paths.h"
#include "process_agent_host.h"
#include "signal_forwarder.h"
#include "stdio_relay.h"
#include "terminal.h"

namespace fs = std::filesystem;
using namespace uvmshim::host;

namespace {

constexpr int kRuntimeError = 125;  // docker's convention for "the runtime failed"

struct RunOptions {
  std::string isolation = "hyperv";
  std::string rootfs;
  std::string name;
  bool interactive = false;
  bool tty = false;
  bool detach = false;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string user;
  std::string hostname;
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  std::vector<std::string> command;
};

std::unique_ptr<AgentHost> StartAgentHost(const RunOptions& options, const fs::path& state_dir) {
  if (options.isolation == "process") {
    ProcessAgentConfig config;
    config.agent_binary = FindTool("uvm-agent", "UVMSHIM_AGENT");
    config.state_dir = state_dir;
    return std::make_unique<ProcessAgentHost>(config);
  }
  throw std::runtime_error("--isolation=hyperv: not available in this build yet");
}

int Run(const RunOptions& options) {
  const std::string id = options.name.empty() ? RandomId() : options.name;
  if (!IsValidId(id))
    throw std::runtime_error(fmt::format("--name \"{}\": ids are [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 chars", id));
  if (options.isolation != "process" && options.isolation != "hyperv")
    throw std::runtime_error(fmt::format("--isolation \"{}\": expected process or hyperv", options.isolation));
  if (options.rootfs.empty() || !fs::is_directory(options.rootfs))
    throw std::runtime_error(fmt::format("--rootfs \"{}\": not a directory", options.rootfs));

  SpecOptions spec;
  spec.process.args = options.command;
  spec.process.env = options.env;
  spec.process.cwd = options.cwd;
  spec.process.terminal = options.tty;
  if (!options.user.empty()) std::tie(spec.process.uid, spec.process.gid) = ParseUser(options.user);
  spec.hostname = options.hostname.empty() ? id : options.hostname;

  const fs::path state_dir = RuntimeRoot() / id;
  if (fs::exists(state_dir)) throw std::runtime_error(fmt::format("container {} already exists", id));

  // Signals are blocked before any thread exists; the forwarder then relays
  // them to the container (or resizes its terminal).
  AgentClient* live_agent = nullptr;
  std::atomic<bool> started{false};
  SignalForwarder forwarder([&](int signal) {
    if (!started || live_agent == nullptr) return;
    try {
      if (signal == SIGWINCH) {
        if (auto size = WindowSize(STDIN_FILENO))
          live_agent->ResizePty(id, "", size->first, size->second);
      } else {
        live_agent->SignalProcess(id, "", static_cast<unsigned>(signal), false);
      }
    } catch (const std::exception& e) {
      spdlog::debug("forwarding signal {}: {}", signal, e.what());
    }
  });

  struct StateDirCleanup {
    fs::path dir;
    ~StateDirCleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{state_dir};
  fs::create_directories(state_dir);

  auto host = StartAgentHost(options, state_dir);
  AgentClient agent(host->channel());
  live_agent = &agent;

  agentpb::CreateContainerRequest create;
  create.set_container_id(id);
  create.set_spec_json(BuildSpecJson(spec));
  create.set_rootfs_path(host->RootfsForAgent(options.rootfs));
  create.set_terminal(options.tty);
  create.set_stdin(options.interactive);
  agent.CreateContainer(create);

  std::optional<RawTerminal> raw;
  if (options.tty && ::isatty(STDIN_FILENO)) {
    raw.emplace(STDIN_FILENO);
    if (auto size = WindowSize(STDIN_FILENO)) agent.ResizePty(id, "", size->first, size->second);
  }
  StdioRelay relay(agent, id, "",
                   {options.interactive ? STDIN_FILENO : -1, STDOUT_FILENO, STDERR_FILENO},
                   options.tty);
  relay.Start();
  agent.StartContainer(id);
  started = true;
  relay.WaitOutputDone();
  ExitResult exit = agent.WaitProcess(id, "");
  started = false;
  relay.StopStdin();
  raw.reset();
  agent.DeleteContainer(id, true);
  try {
    agent.Shutdown(std::chrono::seconds(5));
  } catch (const AgentError& e) {
    spdlog::debug("agent shutdown: {}", e.what());
  }
  host->WaitEnded(std::chrono::seconds(10));
  return static_cast<int>(exit.exit_status);
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("uvmctl");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("uvmctl: %l: %v");
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"uvmctl: run containers in utility VMs (hyperv isolation) or on the host (process isolation)"};
  app.require_subcommand(1);
  bool debug = false;
  app.add_flag("--debug", debug, "verbose logs");

  RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "run a command in a new container");
  run_cmd->add_option("--isolation", run.isolation, "hyperv (a utility VM) or process (the host)")
      ->check(CLI::IsMember({"hyperv", "process"}))->capture_default_str();
  run_cmd->add_option("--rootfs", run.rootfs, "the container's root filesystem directory")->required();
  run_cmd->add_option("--name", run.name, "container id (default: random)");
  run_cmd->add_flag("-i,--interactive", run.interactive, "relay stdin");
  run_cmd->add_flag("-t,--tty", run.tty, "allocate a terminal");
  run_cmd->add_flag("-d,--detach", run.detach, "leave the container running");
  run_cmd->add_option("-e,--env", run.env, "environment K=V")->allow_extra_args(false);
  run_cmd->add_option("-w,--cwd", run.cwd, "working directory inside");
  run_cmd->add_option("-u,--user", run.user, "UID[:GID]");
  run_cmd->add_option("--hostname", run.hostname, "hostname inside");
  run_cmd->add_option("-m,--memory", run.memory_mb, "UVM memory in MiB")->capture_default_str();
  run_cmd->add_option("--cpus", run.cpus, "UVM vCPUs")->capture_default_str();
  run_cmd->add_option("command", run.command, "command and arguments")->required();
  run_cmd->positionals_at_end();

  CLI11_PARSE(app, argc, argv);
  if (debug) spdlog::set_level(spdlog::level::debug);

  try {
    if (*run_cmd) return Run(run);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvmctl: %s\n", e.what());
    return kRuntimeError;
  }
  return 0;
}
