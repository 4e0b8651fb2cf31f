// uvmctl: the command line for people. Every container it runs is served by a
// containerd-shim-uvm-v1 that uvmctl starts and drives through the same task
// API containerd uses, so a UVM's life has one implementation: the shim's.
//   run      a container in a utility VM (--isolation=hyperv, default) or on
//            the host (--isolation=process); stdio relayed, exits with its status
//   exec     another process in a running container
//   console  a shell inside the UVM, outside the container (debugging)
//   ps, logs, rm, hcs-document
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/process.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "agent_client.h"
#include "containerd/runtimeoptions/v1/options.pb.h"
#include "oci_spec.h"
#include "paths.h"
#include "sandbox_state.h"
#include "shim/task_client.h"
#include "signal_forwarder.h"
#include "terminal.h"
#include "uvmctl/console.h"
#include "uvmctl/container_network.h"
#include "uvmctl/hcs_document_command.h"
#include "uvmctl/pool_command.h"
#include "uvmctl/update_command.h"
#include "uvmctl/session.h"

namespace fs = std::filesystem;
namespace bp = boost::process;
using namespace uvmshim;
using namespace uvmshim::host;
using uvmshim::uvmctl::FifoStdio;
namespace taskpb = ::containerd::task::v2;

namespace {

constexpr int kRuntimeError = 125;  // docker's convention: the runtime failed
constexpr const char* kProcessSpecType = "types.containerd.io/opencontainers/runtime-spec/1/Process";

struct RunOptions {
  std::string ns = "uvmctl";
  std::string isolation = "hyperv";
  std::string rootfs;
  std::string name;
  bool interactive = false;
  bool tty = false;
  bool detach = false;
  std::vector<std::string> env;
  std::vector<std::string> volumes;  // HOST:DEST[:ro]
  std::string network;               // "" (today's default) | none | bridge
  std::vector<std::string> publish;  // HOSTPORT:PORT[/tcp|udp]
  std::string cwd = "/";
  std::string user;
  std::string hostname;
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  std::string kernel;
  std::string initrd;
  std::vector<std::string> command;
};

struct ExecOptions {
  std::string id;
  bool interactive = false;
  bool tty = false;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string user;
  std::vector<std::string> command;
};

fs::path BundleDir(const std::string& ns, const std::string& id) {
  return RuntimeRoot() / "bundles" / ns / id;
}

// `containerd-shim-uvm-v1 ... start` prints the daemon's address.
std::string StartShim(const std::string& ns, const std::string& id, const fs::path& bundle) {
  const fs::path shim = FindTool("containerd-shim-uvm-v1", "UVMSHIM_SHIM");
  bp::ipstream out;
  auto env = boost::this_process::environment();
  env.erase("TTRPC_ADDRESS");  // no containerd to publish events to
  bp::child child(shim.string(), bp::args({"-namespace", ns, "-id", id, "-address", "", "start"}),
                  bp::start_dir = bundle.string(), bp::std_out > out, bp::std_err > bp::null, env);
  std::string address;
  std::getline(out, address);
  child.wait();
  if (child.exit_code() != 0 || !address.starts_with("unix://"))
    throw std::runtime_error(fmt::format("starting {} failed (exit {}): {}", shim.string(),
                                         child.exit_code(), address));
  return address;
}

google::protobuf::Any RuntimeOptions(const fs::path& config) {
  runtimeoptions::v1::Options options;
  options.set_config_path(config.string());
  google::protobuf::Any any;
  any.set_type_url("runtimeoptions.v1.Options");
  any.set_value(options.SerializeAsString());
  return any;
}

std::string ContainerIdOrThrow(const std::string& id) {
  if (!IsValidId(id))
    throw std::runtime_error(fmt::format(
        "container id \"{}\": ids are [A-Za-z0-9]+([._-][A-Za-z0-9]+)*, at most 76 chars", id));
  return id;
}

// Sends the host terminal's current size to the process's pty.
void SendWindowSize(shim::TaskClient& task, const std::string& id, const std::string& exec_id) {
  if (auto size = WindowSize(STDIN_FILENO)) {
    taskpb::ResizePtyRequest resize;
    resize.set_id(id);
    resize.set_exec_id(exec_id);
    resize.set_width(size->first);
    resize.set_height(size->second);
    task.Call("ResizePty", resize);
  }
}

// Relays signals to a process and window changes to its terminal.
std::unique_ptr<SignalForwarder> ForwardSignals(shim::TaskClient& task, const std::string& id,
                                                const std::string& exec_id,
                                                std::atomic<bool>& live) {
  return std::make_unique<SignalForwarder>([&task, &live, id, exec_id](int signal) {
    if (!live) return;
    try {
      if (signal == SIGWINCH) {
        SendWindowSize(task, id, exec_id);
        return;
      }
      taskpb::KillRequest kill;
      kill.set_id(id);
      kill.set_exec_id(exec_id);
      kill.set_signal(static_cast<std::uint32_t>(signal));
      task.Call("Kill", kill);
    } catch (const std::exception& e) {
      spdlog::debug("forwarding signal {}: {}", signal, e.what());
    }
  });
}


void CloseStdin(shim::TaskClient& task, const std::string& id, const std::string& exec_id) {
  taskpb::CloseIORequest close;
  close.set_id(id);
  close.set_exec_id(exec_id);
  close.set_stdin(true);
  try {
    task.Call("CloseIO", close);
  } catch (const std::exception& e) {
    spdlog::debug("CloseIO: {}", e.what());
  }
}

void DeleteAndShutdown(shim::TaskClient& task, const std::string& id) {
  taskpb::DeleteRequest del;
  del.set_id(id);
  task.Call<taskpb::DeleteResponse>("Delete", del);
  taskpb::ShutdownRequest shutdown;
  shutdown.set_id(id);
  try {
    task.Call("Shutdown", shutdown);
  } catch (const std::exception&) {
    // The daemon exits while answering; a lost answer is fine.
  }
}

int Run(const RunOptions& options) {
  const std::string id = ContainerIdOrThrow(options.name.empty() ? RandomId() : options.name);
  if (options.rootfs.empty() || !fs::is_directory(options.rootfs))
    throw std::runtime_error(fmt::format("--rootfs \"{}\": not a directory", options.rootfs));
  if (options.memory_mb < 64)
    throw std::runtime_error(fmt::format("--memory {}: a utility VM needs at least 64 MiB", options.memory_mb));
  const unsigned host_cpus = std::thread::hardware_concurrency();
  if (options.cpus == 0 || (host_cpus && options.cpus > host_cpus))
    throw std::runtime_error(fmt::format("--cpus {}: must be 1..{}", options.cpus, host_cpus));
  for (const auto& [flag, path] : {std::pair{"--kernel", options.kernel}, {"--initrd", options.initrd}})
    if (!path.empty() && !fs::exists(path))
      throw std::runtime_error(fmt::format("{} {}: no such file", flag, path));

  const std::vector<VolumeOption> volumes = ParseVolumes(options.volumes);
  const uvmctl::NetworkRequest network_request = uvmctl::ParseNetworkRequest(options.network, options.publish);
  const fs::path bundle = BundleDir(options.ns, id);
  if (fs::exists(bundle) || fs::exists(StateDir(options.ns, id)))
    throw std::runtime_error(fmt::format("container {} already exists", id));
  fs::create_directories(bundle);
  fs::permissions(bundle, fs::perms::owner_all);
  struct BundleCleanup {
    fs::path dir;
    bool keep = false;
    ~BundleCleanup() {
      std::error_code ignored;
      if (keep) return;
      fs::remove_all(dir, ignored);
      fs::remove(dir.parent_path(), ignored);                // bundles/<ns>, once empty
      fs::remove(dir.parent_path().parent_path(), ignored);  // bundles, once empty
    }
  } cleanup{bundle};

  SpecOptions spec;
  spec.process.args = options.command;
  spec.process.env = options.env;
  spec.process.cwd = options.cwd;
  spec.process.terminal = options.tty;
  if (!options.user.empty()) std::tie(spec.process.uid, spec.process.gid) = ParseUser(options.user);
  spec.hostname = options.hostname.empty() ? id : options.hostname;
  spec.volumes = volumes;
  uvmctl::ContainerNetwork network(network_request, id, spec.hostname, bundle);  // undone when Run ends, unless -d
  {
    auto json = nlohmann::json::parse(BuildSpecJson(spec));
    json["root"]["path"] = fs::absolute(options.rootfs).lexically_normal().string();
    network.ApplyToSpec(json);
    std::ofstream(bundle / "config.json") << json.dump();
  }
  {
    std::ofstream config(bundle / "runtime.toml");
    config << fmt::format("isolation = \"{}\"\n[uvm]\nmemory_mb = {}\ncpus = {}\n",
                          options.isolation, options.memory_mb, options.cpus);
    if (!options.kernel.empty()) config << fmt::format("kernel = \"{}\"\n", fs::absolute(options.kernel).string());
    if (!options.initrd.empty()) config << fmt::format("initrd = \"{}\"\n", fs::absolute(options.initrd).string());
  }

  std::atomic<bool> live{false};
  std::unique_ptr<shim::TaskClient> task_holder;
  // Signals are blocked before any thread starts (threads inherit the mask).
  shim::TaskClient* task_ptr = nullptr;
  SignalForwarder early([&](int signal) {
    if (live && task_ptr) {
      taskpb::KillRequest kill;
      kill.set_id(id);
      kill.set_signal(static_cast<std::uint32_t>(signal));
      if (signal == SIGWINCH) {
        try {
          SendWindowSize(*task_ptr, id, "");
        } catch (...) {
        }
        return;
      }
      try {
        task_ptr->Call("Kill", kill);
      } catch (...) {
      }
    }
  });

  std::ofstream(bundle / "log").flush();  // the shim's log (a FIFO under containerd)
  const std::string address = StartShim(options.ns, id, bundle);
  task_holder = std::make_unique<shim::TaskClient>(address, options.ns);
  shim::TaskClient& task = *task_holder;
  task_ptr = &task;

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
  try {
    task.Call<taskpb::CreateTaskResponse>("Create", create);
  } catch (...) {
    taskpb::ShutdownRequest shutdown;
    shutdown.set_id(id);
    shutdown.set_now(true);
    try {
      task.Call("Shutdown", shutdown);
    } catch (...) {
    }
    throw;
  }

  std::optional<RawTerminal> raw;
  if (stdio) {
    if (options.tty && ::isatty(STDIN_FILENO)) {
      raw.emplace(STDIN_FILENO);
      SendWindowSize(task, id, "");
    }
    stdio->Attach([&] { CloseStdin(task, id, ""); });
  }
  taskpb::StartRequest start;
  start.set_id(id);
  task.Call<taskpb::StartResponse>("Start", start);
  live = true;
  if (options.detach) {
    cleanup.keep = true;
    network.Keep();
    std::cout << id << std::endl;
    return 0;
  }
  taskpb::WaitRequest wait;
  wait.set_id(id);
  auto exit = task.Call<taskpb::WaitResponse>("Wait", wait);
  live = false;
  stdio->WaitOutputs();
  raw.reset();
  DeleteAndShutdown(task, id);
  if (std::getenv("UVMCTL_KEEP_BUNDLE")) cleanup.keep = true;  // debugging aid
  return static_cast<int>(exit.exit_status());
}

int Exec(const ExecOptions& options) {
  // The SignalForwarder's signalfd sees a signal only if every thread blocks
  // it; threads inherit their creator's mask: block before the client's thread.
  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&forwarded, s);
  pthread_sigmask(SIG_BLOCK, &forwarded, nullptr);
  SandboxState state = FindState(options.id);
  shim::TaskClient task(state.shim_address, state.ns);
  const std::string exec_id = "exec-" + RandomId();
  ProcessOptions process;
  process.args = options.command;
  process.env = options.env;
  process.cwd = options.cwd;
  process.terminal = options.tty;
  if (!options.user.empty()) std::tie(process.uid, process.gid) = ParseUser(options.user);

  char tmpl[] = "/tmp/uvmctl-exec-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = tmpl;
  struct DirCleanup {
    fs::path dir;
    ~DirCleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dir};
  FifoStdio stdio(dir, "exec", options.interactive, options.tty);

  taskpb::ExecProcessRequest exec;
  exec.set_id(state.id);
  exec.set_exec_id(exec_id);
  exec.set_terminal(options.tty);
  exec.set_stdin(stdio.stdin_path());
  exec.set_stdout(stdio.stdout_path());
  exec.set_stderr(stdio.stderr_path());
  exec.mutable_spec()->set_type_url(kProcessSpecType);
  exec.mutable_spec()->set_value(BuildProcessJson(process));
  task.Call("Exec", exec);
  std::atomic<bool> live{false};
  auto forwarder = ForwardSignals(task, state.id, exec_id, live);
  std::optional<RawTerminal> raw;
  if (options.tty && ::isatty(STDIN_FILENO)) raw.emplace(STDIN_FILENO);
  stdio.Attach([&] { CloseStdin(task, state.id, exec_id); });
  taskpb::StartRequest start;
  start.set_id(state.id);
  start.set_exec_id(exec_id);
  task.Call<taskpb::StartResponse>("Start", start);
  live = true;
  if (options.tty) SendWindowSize(task, state.id, exec_id);
  taskpb::WaitRequest wait;
  wait.set_id(state.id);
  wait.set_exec_id(exec_id);
  auto exit = task.Call<taskpb::WaitResponse>("Wait", wait);
  live = false;
  stdio.WaitOutputs();
  raw.reset();
  taskpb::DeleteRequest del;
  del.set_id(state.id);
  del.set_exec_id(exec_id);
  task.Call<taskpb::DeleteResponse>("Delete", del);
  return static_cast<int>(exit.exit_status());
}

int Ps() {
  std::printf("%-24s %-10s %-9s %-8s %-8s %-8s %-19s %s\n", "ID", "NAMESPACE", "ISOLATION", "STATUS",
              "SHIM", "HOST_PID", "CREATED", "ADDRESS");
  for (const auto& s : ListStates()) {
    bool shim_alive = s.shim_pid > 0 && ::kill(static_cast<pid_t>(s.shim_pid), 0) == 0;
    std::time_t created = s.created_unix;
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", std::gmtime(&created));
    const std::string address = s.ns == "uvmctl" ? uvmctl::ContainerAddress(s.id) : "-";
    std::printf("%-24s %-10s %-9s %-8s %-8lld %-8lld %-19s %s\n", s.id.c_str(), s.ns.c_str(),
                s.isolation.c_str(), shim_alive ? s.status.c_str() : "dead",
                static_cast<long long>(s.shim_pid), static_cast<long long>(s.host_pid), when, address.c_str());
  }
  return 0;
}

int Logs(const std::string& id, bool console) {
  SandboxState state = FindState(id);
  fs::path file = console ? fs::path(state.console_log) : fs::path(state.bundle) / "stdout.log";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: no log at {}", id, file.string()));
  std::cout << in.rdbuf() << std::flush;
  return 0;
}

int Remove(const std::string& id, bool force) {
  uvmctl::NetworkRemoval network(id, force);  // refuses before anything changes
  auto remove_bundle = [&](const std::string& ns) {
    std::error_code ignored;
    if (ns != "uvmctl") return;
    fs::remove_all(BundleDir(ns, id), ignored);
    fs::remove(BundleDir(ns, id).parent_path(), ignored);
    fs::remove(BundleDir(ns, id).parent_path().parent_path(), ignored);
  };
  const auto states = ListStates();
  if (network.pending() && std::none_of(states.begin(), states.end(), [&](const auto& s) { return s.id == id; })) {
    network.Complete();  // uvmctl was killed before its shim recorded the sandbox
    remove_bundle("uvmctl");
    return 0;
  }
  SandboxState state = FindState(id);
  bool shim_alive = state.shim_pid > 0 && ::kill(static_cast<pid_t>(state.shim_pid), 0) == 0;
  if (shim_alive) {
    shim::TaskClient task(state.shim_address, state.ns);
    taskpb::StateRequest query;
    query.set_id(id);
    auto current = task.Call<taskpb::StateResponse>("State", query);
    if (current.status() == containerd::v1::types::RUNNING) {
      if (!force) throw std::runtime_error(fmt::format("container {} is running (use -f)", id));
      taskpb::KillRequest kill;
      kill.set_id(id);
      kill.set_signal(SIGKILL);
      kill.set_all(true);
      task.Call("Kill", kill);
      taskpb::WaitRequest wait;
      wait.set_id(id);
      task.Call<taskpb::WaitResponse>("Wait", wait);
    }
    DeleteAndShutdown(task, id);
  } else {
    // The shim is gone: its `delete` action cleans up what it left.
    const fs::path shim = FindTool("containerd-shim-uvm-v1", "UVMSHIM_SHIM");
    bp::system(shim.string(), bp::args({"-namespace", state.ns, "-id", id, "-bundle", state.bundle, "delete"}),
               bp::std_out > bp::null);
  }
  network.Complete();
  remove_bundle(state.ns);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("uvmctl");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("uvmctl: %l: %v");
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"uvmctl: containers in utility VMs (hyperv isolation) or on the host (process isolation)"};
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
  run_cmd->add_flag("-d,--detach", run.detach, "leave the container running; print its id");
  run_cmd->add_option("-e,--env", run.env, "environment K=V")->allow_extra_args(false);
  run_cmd->add_option("-v,--volume", run.volumes, "bind HOST:DEST[:ro] (file or directory)")
      ->allow_extra_args(false);
  run_cmd->add_option("--network", run.network,
                      "none (a new namespace: loopback only) or bridge (CNI: uvmctl's bridge, an address, -p); "
                      "default: the host's network (process) or the UVM's (hyperv)")
      ->check(CLI::IsMember({"none", "bridge"}));
  run_cmd->add_option("-p,--publish", run.publish, "publish HOSTPORT:PORT[/tcp|udp] (with --network bridge)")
      ->allow_extra_args(false);
  run_cmd->add_option("-w,--cwd", run.cwd, "working directory inside");
  run_cmd->add_option("-u,--user", run.user, "UID[:GID]");
  run_cmd->add_option("--hostname", run.hostname, "hostname inside");
  run_cmd->add_option("-m,--memory", run.memory_mb, "UVM memory in MiB")->capture_default_str();
  run_cmd->add_option("--cpus", run.cpus, "UVM vCPUs")->capture_default_str();
  run_cmd->add_option("--kernel", run.kernel, "UVM kernel (default: the built image)");
  run_cmd->add_option("--initrd", run.initrd, "UVM initrd (default: the built image)");
  run_cmd->add_option("command", run.command, "command and arguments")->required();
  run_cmd->positionals_at_end();

  ExecOptions exec;
  auto* exec_cmd = app.add_subcommand("exec", "run a command in a running container");
  exec_cmd->add_flag("-i,--interactive", exec.interactive, "relay stdin");
  exec_cmd->add_flag("-t,--tty", exec.tty, "allocate a terminal");
  exec_cmd->add_option("-e,--env", exec.env, "environment K=V")->allow_extra_args(false);
  exec_cmd->add_option("-w,--cwd", exec.cwd, "working directory inside");
  exec_cmd->add_option("-u,--user", exec.user, "UID[:GID]");
  exec_cmd->add_option("id", exec.id, "container id")->required();
  exec_cmd->add_option("command", exec.command, "command and arguments")->required();
  exec_cmd->positionals_at_end();

  std::string console_id;
  std::vector<std::string> console_command;
  auto* console_cmd = app.add_subcommand("console", "a shell inside the container's UVM (outside the container)");
  console_cmd->add_option("id", console_id, "container id")->required();
  console_cmd->add_option("command", console_command, "command (default /bin/sh)");

  auto* ps_cmd = app.add_subcommand("ps", "list containers");

  std::string logs_id;
  bool logs_console = false;
  auto* logs_cmd = app.add_subcommand("logs", "a detached container's output, or its UVM's console");
  logs_cmd->add_flag("--console", logs_console, "the UVM's serial console log");
  logs_cmd->add_option("id", logs_id, "container id")->required();

  std::string rm_id;
  bool rm_force = false;
  auto* rm_cmd = app.add_subcommand("rm", "remove a container (and its UVM)");
  rm_cmd->add_flag("-f,--force", rm_force, "kill it if it runs");
  rm_cmd->add_option("id", rm_id, "container id")->required();

  uvmctl::HcsDocumentOptions hcs;
  auto* hcs_cmd = uvmctl::AddHcsDocumentCommand(app, hcs);
  uvmctl::UpdateOptions update;
  auto* update_cmd = uvmctl::AddUpdateCommand(app, update);
  uvmctl::PoolOptions pool;
  auto* pool_cmd = uvmctl::AddPoolCommand(app, pool);

  CLI11_PARSE(app, argc, argv);
  if (debug) spdlog::set_level(spdlog::level::debug);
  // `exec ID -- CMD`: CLI11 hands the separator on once a positional preceded it.
  for (auto* command : {&exec.command, &console_command})
    if (!command->empty() && command->front() == "--") command->erase(command->begin());
  if (*exec_cmd && exec.command.empty()) {
    std::fprintf(stderr, "uvmctl: exec: a command is required\n");
    return kRuntimeError;
  }
  // CLI11 2.1 keeps the "--" of `exec ID -- CMD` (a positional before it) in CMD.
  if (!exec.command.empty() && exec.command.front() == "--") exec.command.erase(exec.command.begin());

  try {
    if (*run_cmd) return Run(run);
    if (*exec_cmd) return Exec(exec);
    if (*console_cmd) return uvmctl::Console(FindState(console_id), console_command);
    if (*ps_cmd) return Ps();
    if (*logs_cmd) return Logs(logs_id, logs_console);
    if (*rm_cmd) return Remove(rm_id, rm_force);
    if (*hcs_cmd) return uvmctl::PrintHcsDocument(hcs);
    if (*update_cmd) return uvmctl::RunUpdate(update);
    if (*pool_cmd) return uvmctl::RunPool(pool);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvmctl: %s\n", e.what());
    return kRuntimeError;
  }
  return 0;
}
