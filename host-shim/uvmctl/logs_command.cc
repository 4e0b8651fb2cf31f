#include "uvmctl/logs_command.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "sandbox_state.h"

namespace uvmshim::uvmctl {

namespace fs = std::filesystem;

CLI::App* AddLogsCommand(CLI::App& app, LogsOptions& options) {
  auto* command = app.add_subcommand("logs", "a detached container's output, or its UVM's console");
  command->add_flag("--console", options.console, "the UVM's serial console log");
  command->add_option("id", options.id, "container id")->required();
  return command;
}

int Logs(const LogsOptions& options) {
  const host::SandboxState state = host::FindState(options.id);
  const fs::path file = options.console ? fs::path(state.console_log) : fs::path(state.bundle) / "stdout.log";
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: no log at {}", options.id, file.string()));
  std::cout << in.rdbuf() << std::flush;
  return 0;
}

}  // namespace uvmshim::uvmctl
