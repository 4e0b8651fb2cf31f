// `uvmctl run`: a new container in a utility VM (--isolation=hyperv, default)
// or on the host (--isolation=process), served by a shim uvmctl starts; stdio
// relayed, exits with the container's status (or prints its id with -d).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace uvmshim::uvmctl {

struct RunOptions {
  std::string ns = "uvmctl";
  std::string isolation = "hyperv";
  std::string rootfs;
  std::string name;
  bool interactive = false;
  bool tty = false;
  bool detach = false;
  std::vector<std::string> env;
  std::vector<std::string> volumes;  // HOST:DEST[:ro]
  std::string network;               // "" (today's default) | none | bridge
  std::vector<std::string> publish;  // HOSTPORT:PORT[/tcp|udp]
  std::string cwd = "/";
  std::string user;
  std::string hostname;
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  std::string kernel;
  std::string initrd;
  std::vector<std::string> command;
};

CLI::App* AddRunCommand(CLI::App& app, RunOptions& options);
int Run(const RunOptions& options);

}  // namespace uvmshim::uvmctl
