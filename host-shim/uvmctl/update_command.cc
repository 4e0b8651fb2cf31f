#include "uvmctl/update_command.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "containerd/task/v2/shim.pb.h"
#include "sandbox_state.h"
#include "shim/task_client.h"

namespace uvmshim::uvmctl {

CLI::App* AddUpdateCommand(CLI::App& app, UpdateOptions& options) {
  auto* command = app.add_subcommand("update", "change a running container's resource limits");
  command->add_option("--memory-limit", options.memory_limit, "memory limit in bytes (-1: none)");
  command->add_option("--cpu-quota", options.cpu_quota, "CPU time per period in microseconds (-1: none)");
  command->add_option("--cpu-period", options.cpu_period, "CPU period in microseconds");
  command->add_option("--pids-limit", options.pids_limit, "maximum number of processes (-1: none)");
  command->add_option("id", options.id, "container id")->required();
  return command;
}

int RunUpdate(const UpdateOptions& options) {
  nlohmann::json resources = nlohmann::json::object();
  if (options.memory_limit) resources["memory"]["limit"] = *options.memory_limit;
  if (options.cpu_quota) resources["cpu"]["quota"] = *options.cpu_quota;
  if (options.cpu_period) resources["cpu"]["period"] = *options.cpu_period;
  if (options.pids_limit) resources["pids"]["limit"] = *options.pids_limit;
  if (resources.empty()) throw std::invalid_argument("update: give at least one limit");
  const host::SandboxState state = host::FindState(options.id);
  shim::TaskClient task(state.shim_address, state.ns);
  ::containerd::task::v2::UpdateTaskRequest request;
  request.set_id(options.id);
  request.mutable_resources()->set_type_url("types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
  request.mutable_resources()->set_value(resources.dump());
  task.Call("Update", request);
  return 0;
}

}  // namespace uvmshim::uvmctl
