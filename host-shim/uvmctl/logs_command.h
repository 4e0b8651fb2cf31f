// `uvmctl logs ID [--console]`: a detached container's output, or its UVM's
// serial console log.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace uvmshim::uvmctl {

struct LogsOptions {
  std::string id;
  bool console = false;
};

CLI::App* AddLogsCommand(CLI::App& app, LogsOptions& options);
int Logs(const LogsOptions& options);

}  // namespace uvmshim::uvmctl
