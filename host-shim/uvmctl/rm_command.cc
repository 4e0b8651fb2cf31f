#include "uvmctl/rm_command.h"

#include <signal.h>

#include <boost/process.hpp>
#include <fmt/format.h>

#include <algorithm>

#include "containerd/task/v2/shim.pb.h"
#include "paths.h"
#include "sandbox_state.h"
#include "uvmctl/container_network.h"
#include "uvmctl/shim_calls.h"

namespace uvmshim::uvmctl {
namespace {

namespace bp = boost::process;
namespace taskpb = ::containerd::task::v2;

constexpr const char* kUvmctlNamespace = "uvmctl";  // the only namespace uvmctl writes bundles in

// Kills (with -f) and deletes the container through its live shim.
void RemoveThroughShim(const host::SandboxState& state, bool force) {
  shim::TaskClient task(state.shim_address, state.ns);
  taskpb::StateRequest query;
  query.set_id(state.id);
  auto current = task.Call<taskpb::StateResponse>("State", query);
  if (current.status() == containerd::v1::types::RUNNING) {
    if (!force) throw std::runtime_error(fmt::format("container {} is running (use -f)", state.id));
    taskpb::KillRequest kill;
    kill.set_id(state.id);
    kill.set_signal(SIGKILL);
    kill.set_all(true);
    task.Call("Kill", kill);
    taskpb::WaitRequest wait;
    wait.set_id(state.id);
    task.Call<taskpb::WaitResponse>("Wait", wait);
  }
  DeleteAndShutdown(task, state.id);
}

// The shim is gone: its `delete` action cleans up what it left.
void RemoveWithoutShim(const host::SandboxState& state) {
  const auto shim = host::FindTool("containerd-shim-uvm-v1", "UVMSHIM_SHIM");
  bp::system(shim.string(), bp::args({"-namespace", state.ns, "-id", state.id, "-bundle", state.bundle, "delete"}),
             bp::std_out > bp::null);
}

void RemoveUvmctlBundle(const std::string& ns, const std::string& id) {
  if (ns == kUvmctlNamespace) RemoveBundle(BundleDir(ns, id));
}

}  // namespace

CLI::App* AddRemoveCommand(CLI::App& app, RemoveOptions& options) {
  auto* command = app.add_subcommand("rm", "remove a container (and its UVM)");
  command->add_flag("-f,--force", options.force, "kill it if it runs");
  command->add_option("id", options.id, "container id")->required();
  return command;
}

int Remove(const RemoveOptions& options) {
  const std::string& id = options.id;
  NetworkRemoval network(id, options.force);  // refuses before anything changes
  const auto states = host::ListStates();
  if (network.pending() && std::none_of(states.begin(), states.end(), [&](const auto& s) { return s.id == id; })) {
    network.Complete();  // uvmctl was killed before its shim recorded the sandbox
    RemoveUvmctlBundle(kUvmctlNamespace, id);
    return 0;
  }
  const host::SandboxState state = host::FindState(id);
  const bool shim_alive = state.shim_pid > 0 && ::kill(static_cast<pid_t>(state.shim_pid), 0) == 0;
  if (shim_alive)
    RemoveThroughShim(state, options.force);
  else
    RemoveWithoutShim(state);
  network.Complete();
  RemoveUvmctlBundle(state.ns, id);
  return 0;
}

}  // namespace uvmshim::uvmctl
