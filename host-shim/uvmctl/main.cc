// uvmctl: the command line for people. Every container it runs is served by a
// containerd-shim-uvm-v1 that uvmctl starts and drives through the same task
// API containerd uses, so a UVM's life has one implementation: the shim's.
// This file only parses the command line and dispatches; each command lives
// in its own file:
//   run      run_command.cc     a new container (utility VM or host process)
//   exec     exec_command.cc    another process in a running container
//   console  console.cc         a shell inside the UVM, outside the container
//   ps       ps_command.cc      rm  rm_command.cc      logs  logs_command.cc
//   update   update_command.cc  hcs-document  hcs_document_command.cc
//   pool     pool_command.cc    the warm utility VM pool
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "sandbox_state.h"
#include "uvmctl/console.h"
#include "uvmctl/exec_command.h"
#include "uvmctl/hcs_document_command.h"
#include "uvmctl/logs_command.h"
#include "uvmctl/pool_command.h"
#include "uvmctl/ps_command.h"
#include "uvmctl/rm_command.h"
#include "uvmctl/run_command.h"
#include "uvmctl/shim_calls.h"
#include "uvmctl/update_command.h"

using namespace uvmshim;

namespace {

// `exec ID -- CMD`: CLI11 2.1 hands the separator on once a positional preceded it.
void DropLeadingSeparator(std::vector<std::string>& command) {
  if (!command.empty() && command.front() == "--") command.erase(command.begin());
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

  uvmctl::RunOptions run;
  auto* run_cmd = uvmctl::AddRunCommand(app, run);
  uvmctl::ExecOptions exec;
  auto* exec_cmd = uvmctl::AddExecCommand(app, exec);

  std::string console_id;
  std::vector<std::string> console_command;
  auto* console_cmd = app.add_subcommand("console", "a shell inside the container's UVM (outside the container)");
  console_cmd->add_option("id", console_id, "container id")->required();
  console_cmd->add_option("command", console_command, "command (default /bin/sh)");

  auto* ps_cmd = uvmctl::AddPsCommand(app);
  uvmctl::LogsOptions logs;
  auto* logs_cmd = uvmctl::AddLogsCommand(app, logs);
  uvmctl::RemoveOptions rm;
  auto* rm_cmd = uvmctl::AddRemoveCommand(app, rm);
  uvmctl::HcsDocumentOptions hcs;
  auto* hcs_cmd = uvmctl::AddHcsDocumentCommand(app, hcs);
  uvmctl::UpdateOptions update;
  auto* update_cmd = uvmctl::AddUpdateCommand(app, update);
  uvmctl::PoolOptions pool;
  auto* pool_cmd = uvmctl::AddPoolCommand(app, pool);

  CLI11_PARSE(app, argc, argv);
  if (debug) spdlog::set_level(spdlog::level::debug);
  DropLeadingSeparator(exec.command);
  DropLeadingSeparator(console_command);
  if (*exec_cmd && exec.command.empty()) {
    std::fprintf(stderr, "uvmctl: exec: a command is required\n");
    return uvmctl::kRuntimeError;
  }
  // `exec ID -- -- CMD` keeps the second separator out too (as before the split).
  DropLeadingSeparator(exec.command);

  try {
    if (*run_cmd) return uvmctl::Run(run);
    if (*exec_cmd) return uvmctl::Exec(exec);
    if (*console_cmd) return uvmctl::Console(host::FindState(console_id), console_command);
    if (*ps_cmd) return uvmctl::Ps();
    if (*logs_cmd) return uvmctl::Logs(logs);
    if (*rm_cmd) return uvmctl::Remove(rm);
    if (*hcs_cmd) return uvmctl::PrintHcsDocument(hcs);
    if (*update_cmd) return uvmctl::RunUpdate(update);
    if (*pool_cmd) return uvmctl::RunPool(pool);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvmctl: %s\n", e.what());
    return uvmctl::kRuntimeError;
  }
  return 0;
}
