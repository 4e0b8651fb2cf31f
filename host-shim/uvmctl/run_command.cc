#include "uvmctl/run_command.h"

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "common/ids.h"
#include "containerd/task/v2/shim.pb.h"
#include "oci_spec.h"
#include "paths.h"
#include "sandbox_config.h"
#include "sandbox_state.h"
#include "terminal.h"
#include "uvmctl/container_network.h"
#include "uvmctl/session.h"
#include "uvmctl/shim_calls.h"
#include "uvmctl/signal_relay.h"

namespace uvmshim::uvmctl {
namespace {

namespace fs = std::filesystem;
namespace taskpb = ::containerd::task::v2;

std::string ContainerIdOrThrow(const std::string& id) {
  if (!IsValidId(id))
    throw std::runtime_error(fmt::format(
        "container id \"{}\": ids are [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 chars", id));
  return id;
}

// Bad flags are refused before anything is created.
void CheckOptions(const RunOptions& options) {
  if (options.rootfs.empty() || !fs::is_directory(options.rootfs))
    throw std::runtime_error(fmt::format("--rootfs \"{}\": not a directory", options.rootfs));
  if (options.memory_mb < host::kMinVmMemoryMb)
    throw std::runtime_error(fmt::format("--memory {}: a utility VM needs at least 64 MiB", options.memory_mb));
  const unsigned host_cpus = std::thread::hardware_concurrency();
  if (options.cpus == 0 || (host_cpus && options.cpus > host_cpus))
    throw std::runtime_error(fmt::format("--cpus {}: must be 1..{}", options.cpus, host_cpus));
  for (const auto& [flag, path] : {std::pair{"--kernel", options.kernel}, {"--initrd", options.initrd}})
    if (!path.empty() && !fs::exists(path))
      throw std::runtime_error(fmt::format("{} {}: no such file", flag, path));
}

// The bundle's runtime config, written through the config code.
std::string RuntimeConfigToml(const RunOptions& options) {
  host::SandboxConfig config;
  config.isolation = host::ParseIsolation(options.isolation);
  config.memory_mb = options.memory_mb;
  config.cpus = options.cpus;
  if (!options.kernel.empty()) config.kernel = fs::absolute(options.kernel);
  if (!options.initrd.empty()) config.initrd = fs::absolute(options.initrd);
  return host::FormatSandboxConfig(config);
}

host::SpecOptions ContainerSpec(const RunOptions& options, const std::string& id,
                                std::vector<host::VolumeOption> volumes) {
  host::SpecOptions spec;
  spec.process.args = options.command;
  spec.process.env = options.env;
  spec.process.cwd = options.cwd;
  spec.process.terminal = options.tty;
  if (!options.user.empty()) std::tie(spec.process.uid, spec.process.gid) = host::ParseUser(options.user);
  spec.hostname = options.hostname.empty() ? id : options.hostname;
  spec.volumes = std::move(volumes);
  return spec;
}

// Removes the bundle when `run` ends, unless the container stays (-d).
struct BundleCleanup {
  fs::path dir;
  bool keep = false;
  ~BundleCleanup() {
    if (!keep) RemoveBundle(dir);
  }
};

// Create, shutting the fresh shim down when it fails.
void CreateTask(shim::TaskClient& task, const taskpb::CreateTaskRequest& create) {
  try {
    task.Call<taskpb::CreateTaskResponse>("Create", create);
  } catch (...) {
    taskpb::ShutdownRequest shutdown;
    shutdown.set_id(create.id());
    shutdown.set_now(true);
    try {
      task.Call("Shutdown", shutdown);
    } catch (...) {
    }
    throw;
  }
}

}  // namespace

CLI::App* AddRunCommand(CLI::App& app, RunOptions& run) {
  auto* command = app.add_subcommand("run", "run a command in a new container");
  command->add_option("--isolation", run.isolation, "hyperv (a utility VM) or process (the host)")
      ->check(CLI::IsMember({"hyperv", "process"}))->capture_default_str();
  command->add_option("--rootfs", run.rootfs, "the container's root filesystem directory")->required();
  command->add_option("--name", run.name, "container id (default: random)");
  command->add_flag("-i,--interactive", run.interactive, "relay stdin");
  command->add_flag("-t,--tty", run.tty, "allocate a terminal");
  command->add_flag("-d,--detach", run.detach, "leave the container running; print its id");
  command->add_option("-e,--env", run.env, "environment K=V")->allow_extra_args(false);
  command->add_option("-v,--volume", run.volumes, "bind HOST:DEST[:ro] (file or directory)")
      ->allow_extra_args(false);
  command->add_option("--network", run.network,
                      "none (a new namespace: loopback only) or bridge (CNI: uvmctl's bridge, an address, -p); "
                      "default: the host's network (process) or the UVM's (hyperv)")
      ->check(CLI::IsMember({"none", "bridge"}));
  command->add_option("-p,--publish", run.publish, "publish HOSTPORT:PORT[/tcp|udp] (with --network bridge)")
      ->allow_extra_args(false);
  command->add_option("-w,--cwd", run.cwd, "working directory inside");
  command->add_option("-u,--user", run.user, "UID[:GID]");
  command->add_option("--hostname", run.hostname, "hostname inside");
  command->add_option("-m,--memory", run.memory_mb, "UVM memory in MiB")->capture_default_str();
  command->add_option("--cpus", run.cpus, "UVM vCPUs")->capture_default_str();
  command->add_option("--kernel", run.kernel, "UVM kernel (default: the built image)");
  command->add_option("--initrd", run.initrd, "UVM initrd (default: the built image)");
  command->add_option("command", run.command, "command and arguments")->required();
  command->positionals_at_end();
  return command;
}

int Run(const RunOptions& options) {
  const std::string id = ContainerIdOrThrow(options.name.empty() ? host::RandomId() : options.name);
  CheckOptions(options);
  std::vector<host::VolumeOption> volumes = host::ParseVolumes(options.volumes);
  const NetworkRequest network_request = ParseNetworkRequest(options.network, options.publish);
  const fs::path bundle = BundleDir(options.ns, id);
  if (fs::exists(bundle) || fs::exists(host::StateDir(options.ns, id)))
    throw std::runtime_error(fmt::format("container {} already exists", id));
  fs::create_directories(bundle);
  fs::permissions(bundle, fs::perms::owner_all);
  BundleCleanup cleanup{bundle};

  const host::SpecOptions spec = ContainerSpec(options, id, std::move(volumes));
  ContainerNetwork network(network_request, id, spec.hostname, bundle);  // undone when Run ends, unless -d
  {
    auto json = nlohmann::json::parse(host::BuildSpecJson(spec));
    json["root"]["path"] = fs::absolute(options.rootfs).lexically_normal().string();
    network.ApplyToSpec(json);
    std::ofstream(bundle / "config.json") << json.dump();
  }
  std::ofstream(bundle / "runtime.toml") << RuntimeConfigToml(options);

  SignalRelay signals;  // before the task client's threads start
  std::ofstream(bundle / "log").flush();  // the shim's log (a FIFO under containerd)
  const std::string address = StartShim(options.ns, id, bundle);
  auto task = std::make_shared<shim::TaskClient>(address, options.ns);

  std::optional<FifoStdio> stdio;
  taskpb::CreateTaskRequest create;
  create.set_id(id);
  create.set_bundle(bundle.string());
  create.set_terminal(options.tty);
  *create.mutable_options() = RuntimeOptions(bundle / "runtime.toml");
  if (options.detach) {
    create.set_stdout("file://" + (bundle / "stdout.log").string());
    if (!options.tty) create.set_stderr("file://" + (bundle / "stdout.log").string());
  } else {
    stdio.emplace(bundle, "init", options.interactive, options.tty);
    create.set_stdin(stdio->stdin_path());
    create.set_stdout(stdio->stdout_path());
    create.set_stderr(stdio->stderr_path());
  }
  CreateTask(*task, create);

  std::optional<host::RawTerminal> raw;
  if (stdio) {
    if (options.tty && ::isatty(STDIN_FILENO)) {
      raw.emplace(STDIN_FILENO);
      SendWindowSize(*task, id, "");
    }
    stdio->Attach([&] { CloseStdin(*task, id, ""); });
  }
  taskpb::StartRequest start;
  start.set_id(id);
  task->Call<taskpb::StartResponse>("Start", start);
  signals.Start(task, id, "");
  if (options.detach) {
    cleanup.keep = true;
    network.Keep();
    std::cout << id << std::endl;
    return 0;
  }
  taskpb::WaitRequest wait;
  wait.set_id(id);
  auto exit = task->Call<taskpb::WaitResponse>("Wait", wait);
  signals.Stop();
  stdio->WaitOutputs();
  raw.reset();
  DeleteAndShutdown(*task, id);
  if (std::getenv("UVMCTL_KEEP_BUNDLE")) cleanup.keep = true;  // debugging aid
  return static_cast<int>(exit.exit_status());
}

}  // namespace uvmshim::uvmctl
