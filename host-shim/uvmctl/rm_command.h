// `uvmctl rm [-f] ID`: removes a container, its UVM, its network and bundle;
// -f kills it first when it runs. A dead shim's leftovers are cleaned by the
// shim's own `delete` action.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace uvmshim::uvmctl {

struct RemoveOptions {
  std::string id;
  bool force = false;
};

CLI::App* AddRemoveCommand(CLI::App& app, RemoveOptions& options);
int Remove(const RemoveOptions& options);

}  // namespace uvmshim::uvmctl
