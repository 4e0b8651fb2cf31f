#include "uvmctl/exec_command.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <optional>

#include "common/ids.h"
#include "containerd/task/v2/shim.pb.h"
#include "oci_spec.h"
#include "paths.h"
#include "sandbox_state.h"
#include "terminal.h"
#include "uvmctl/session.h"
#include "uvmctl/shim_calls.h"
#include "uvmctl/signal_relay.h"

namespace uvmshim::uvmctl {
namespace {

namespace fs = std::filesystem;
namespace taskpb = ::containerd::task::v2;

constexpr const char* kProcessSpecType = "types.containerd.io/opencontainers/runtime-spec/1/Process";

// The FIFOs of one exec live in a private temporary directory.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/uvmctl-exec-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string ProcessJson(const ExecOptions& options) {
  host::ProcessOptions process;
  process.args = options.command;
  process.env = options.env;
  process.cwd = options.cwd;
  process.terminal = options.tty;
  if (!options.user.empty()) std::tie(process.uid, process.gid) = host::ParseUser(options.user);
  return host::BuildProcessJson(process);
}

}  // namespace

CLI::App* AddExecCommand(CLI::App& app, ExecOptions& exec) {
  auto* command = app.add_subcommand("exec", "run a command in a running container");
  command->add_flag("-i,--interactive", exec.interactive, "relay stdin");
  command->add_flag("-t,--tty", exec.tty, "allocate a terminal");
  command->add_option("-e,--env", exec.env, "environment K=V")->allow_extra_args(false);
  command->add_option("-w,--cwd", exec.cwd, "working directory inside");
  command->add_option("-u,--user", exec.user, "UID[:GID]");
  command->add_option("id", exec.id, "container id")->required();
  command->add_option("command", exec.command, "command and arguments")->required();
  command->positionals_at_end();
  return command;
}

int Exec(const ExecOptions& options) {
  SignalRelay signals;  // before the task client's threads start
  const host::SandboxState state = host::FindState(options.id);
  auto task = std::make_shared<shim::TaskClient>(state.shim_address, state.ns);
  const std::string exec_id = "exec-" + host::RandomId();
  const std::string process_json = ProcessJson(options);

  TempDir dir;
  FifoStdio stdio(dir.path, "exec", options.interactive, options.tty);
  taskpb::ExecProcessRequest exec;
  exec.set_id(state.id);
  exec.set_exec_id(exec_id);
  exec.set_terminal(options.tty);
  exec.set_stdin(stdio.stdin_path());
  exec.set_stdout(stdio.stdout_path());
  exec.set_stderr(stdio.stderr_path());
  exec.mutable_spec()->set_type_url(kProcessSpecType);
  exec.mutable_spec()->set_value(process_json);
  task->Call("Exec", exec);

  std::optional<host::RawTerminal> raw;
  if (options.tty && ::isatty(STDIN_FILENO)) raw.emplace(STDIN_FILENO);
  stdio.Attach([&] { CloseStdin(*task, state.id, exec_id); });
  taskpb::StartRequest start;
  start.set_id(state.id);
  start.set_exec_id(exec_id);
  task->Call<taskpb::StartResponse>("Start", start);
  signals.Start(task, state.id, exec_id);
  if (options.tty) SendWindowSize(*task, state.id, exec_id);
  taskpb::WaitRequest wait;
  wait.set_id(state.id);
  wait.set_exec_id(exec_id);
  auto exit = task->Call<taskpb::WaitResponse>("Wait", wait);
  signals.Stop();
  stdio.WaitOutputs();
  raw.reset();
  taskpb::DeleteRequest del;
  del.set_id(state.id);
  del.set_exec_id(exec_id);
  task->Call<taskpb::DeleteResponse>("Delete", del);
  return static_cast<int>(exit.exit_status());
}

}  // namespace uvmshim::uvmctl
