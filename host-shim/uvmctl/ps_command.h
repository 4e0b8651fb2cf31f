// `uvmctl ps`: every sandbox of every namespace, its shim's liveness and address.
#pragma once

#include <CLI/CLI.hpp>

namespace uvmshim::uvmctl {

CLI::App* AddPsCommand(CLI::App& app);
int Ps();

}  // namespace uvmshim::uvmctl
