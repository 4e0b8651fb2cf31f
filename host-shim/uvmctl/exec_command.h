// `uvmctl exec ID CMD`: another process in a running container, stdio and
// signals relayed; exits with the process's status.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace uvmshim::uvmctl {

struct ExecOptions {
  std::string id;
  bool interactive = false;
  bool tty = false;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string user;
  std::vector<std::string> command;
};

CLI::App* AddExecCommand(CLI::App& app, ExecOptions& options);
int Exec(const ExecOptions& options);

}  // namespace uvmshim::uvmctl
