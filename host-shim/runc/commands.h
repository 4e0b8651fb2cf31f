// uvm-runc's commands other than create (monitor.h) and exec (exec_command.h):
// each reads <root>/<id>/state.json and, while the container's monitor runs,
// asks it over the control socket. Each returns the process exit code and
// throws std::exception with a message naming what failed.
#pragma once

#include "runc/cli.h"

namespace uvmshim::runc {

int StartCommand(const CommandLine& cl);
int StateCommand(const CommandLine& cl);
int KillCommand(const CommandLine& cl);
int DeleteCommand(const CommandLine& cl);
int ListCommand(const CommandLine& cl);
int PsCommand(const CommandLine& cl);
int UpdateCommand(const CommandLine& cl);
int FeaturesCommand(const CommandLine& cl);
int PrintVersion();

// "KILL", "SIGKILL", "9" -> 9; throws std::invalid_argument.
int ParseSignal(const std::string& text);

}  // namespace uvmshim::runc
