// uvm-runc: a runc-compatible runtime command (what Docker's and Podman's
// runc-style runtimes call) whose containers run in uvmshim sandboxes: a
// utility VM (--isolation=hyperv) or the host (--isolation=process), built on
// the same Sandbox / agent client / stdio relay as containerd-shim-uvm-v1.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "runc/cli.h"
#include "runc/commands.h"
#include "runc/exec_command.h"
#include "runc/monitor.h"
#include "runc/runc_log.h"

namespace {

constexpr const char* kUsage =
    "usage: uvm-runc [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup]\n"
    "                [--isolation process|hyperv] COMMAND [ARGS...]\n"
    "commands: create, start, state, kill, delete, exec, ps, list, update, pause, resume, features\n";

int Dispatch(const uvmshim::runc::CommandLine& cl) {
  using namespace uvmshim::runc;
  const std::string& c = cl.command;
  if (c == "create") return CreateContainer(PrepareLaunch(cl));
  if (c == "start") return StartCommand(cl);
  if (c == "state") return StateCommand(cl);
  if (c == "kill") return KillCommand(cl);
  if (c == "delete") return DeleteCommand(cl);
  if (c == "exec") return ExecCommand(cl);
  if (c == "ps") return PsCommand(cl);
  if (c == "list") return ListCommand(cl);
  if (c == "update") return UpdateCommand(cl);
  if (c == "features") return FeaturesCommand(cl);
  if (c == "pause" || c == "resume")
    throw std::runtime_error(c + " is not supported by uvm-runc: its agent has no freezer yet");
  if (c == "run" || c == "checkpoint" || c == "restore" || c == "events" || c == "spec")
    throw std::runtime_error(c + " is not supported by uvm-runc");
  throw std::invalid_argument("unknown command \"" + c + "\"\n" + kUsage);
}

}  // namespace

int main(int argc, char** argv) {
  uvmshim::runc::CommandLine cl;
  try {
    cl = uvmshim::runc::ParseCommandLine({argv + 1, argv + argc});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uvm-runc: %s\n%s", e.what(), kUsage);
    return 1;
  }
  if (cl.version) return uvmshim::runc::PrintVersion();
  if (cl.command.empty() || cl.command == "help") {
    std::fputs(kUsage, cl.command.empty() ? stderr : stdout);
    return cl.command.empty() ? 1 : 0;
  }
  uvmshim::runc::SetUpLogging(cl.global, /*to_stderr=*/false);
  try {
    return Dispatch(cl);
  } catch (const std::exception& e) {
    // containerd's runc shim and conmon read the last error line of --log back.
    spdlog::error("{}", e.what());
    spdlog::default_logger()->flush();
    std::fprintf(stderr, "uvm-runc: %s\n", e.what());
    return 1;
  }
}
