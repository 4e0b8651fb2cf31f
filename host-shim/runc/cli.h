// uvm-runc's command line, as runc's callers write it: global flags first
// (--root, --log, --log-format, --systemd-cgroup, --isolation), then the
// command, its flags (`--flag value` or `--flag=value`) and its positionals.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace uvmshim::runc {

struct GlobalOptions {
  std::string root = "/run/uvm-runc";
  std::string log_file;         // "" = stderr only
  std::string log_format = "text";  // text | json
  bool systemd_cgroup = false;  // accepted; uvm-runc places cgroups itself
  bool debug = false;
  std::optional<std::string> isolation;  // process | hyperv; else config / annotation
};

struct CommandLine {
  GlobalOptions global;
  std::string command;  // "" with --version / --help
  bool version = false;
  std::map<std::string, std::string> flags;  // name without dashes -> value ("" for switches)
  std::vector<std::string> positionals;

  bool Has(const std::string& flag) const { return flags.contains(flag); }
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
  // The container id: the first positional; throws std::invalid_argument when absent.
  const std::string& Id() const;
};

// Flags of a command that take a value (the rest are switches).
const std::set<std::string>& ValueFlagsOf(const std::string& command);

// Throws std::invalid_argument naming the unknown flag or missing value.
CommandLine ParseCommandLine(const std::vector<std::string>& args);

}  // namespace uvmshim::runc
