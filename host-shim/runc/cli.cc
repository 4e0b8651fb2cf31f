#include "runc/cli.h"

#include <fmt/format.h>

#include <stdexcept>

namespace uvmshim::runc {

std::string CommandLine::Get(const std::string& flag, const std::string& fallback) const {
  auto it = flags.find(flag);
  return it == flags.end() ? fallback : it->second;
}

const std::string& CommandLine::Id() const {
  if (positionals.empty()) throw std::invalid_argument(fmt::format("{}: the container id is required", command));
  return positionals.front();
}

const std::set<std::string>& ValueFlagsOf(const std::string& command) {
  static const std::map<std::string, std::set<std::string>> kValueFlags = {
      {"create", {"bundle", "b", "pid-file", "console-socket", "preserve-fds", "notify-socket"}},
      {"run", {"bundle", "b", "pid-file", "console-socket", "preserve-fds"}},
      {"exec", {"process", "p", "pid-file", "console-socket", "cwd", "env", "e", "user", "u", "cap", "c",
                "preserve-fds", "process-label", "apparmor", "cgroup"}},
      {"ps", {"format", "f"}},
      {"list", {"format", "f"}},
      {"state", {}},
      {"kill", {}},
      {"delete", {}},
      {"update", {"resources", "r", "memory", "cpu-quota", "cpu-period", "pids-limit", "cpu-shares",
                  "memory-swap", "memory-reservation", "kernel-memory", "cpuset-cpus", "cpuset-mems",
                  "blkio-weight", "l3-cache-schema", "mem-bw-schema", "cpu-rt-period", "cpu-rt-runtime"}},
  };
  static const std::set<std::string> kNone;
  auto it = kValueFlags.find(command);
  return it == kValueFlags.end() ? kNone : it->second;
}

namespace {

// "--name=value" / "--name value" / "-n value"; returns the name without dashes.
std::string FlagName(const std::string& arg, std::optional<std::string>& inline_value) {
  std::string name = arg.substr(arg.starts_with("--") ? 2 : 1);
  if (auto eq = name.find('='); eq != std::string::npos) {
    inline_value = name.substr(eq + 1);
    name.resize(eq);
  }
  return name;
}

}  // namespace

CommandLine ParseCommandLine(const std::vector<std::string>& args) {
  CommandLine cl;
  std::size_t i = 0;
  static const std::set<std::string> kGlobalValueFlags = {"root", "log", "log-format", "isolation", "criu",
                                                          "rootless"};
  for (; i < args.size() && args[i].starts_with("-"); ++i) {
    std::optional<std::string> value;
    const std::string name = FlagName(args[i], value);
    if (kGlobalValueFlags.contains(name)) {
      if (!value) {
        if (++i >= args.size()) throw std::invalid_argument(fmt::format("flag --{} needs a value", name));
        value = args[i];
      }
      if (name == "root") cl.global.root = *value;
      if (name == "log") cl.global.log_file = *value;
      if (name == "log-format") {
        if (*value != "text" && *value != "json")
          throw std::invalid_argument(fmt::format("--log-format: \"{}\" is neither text nor json", *value));
        cl.global.log_format = *value;
      }
      if (name == "isolation") {
        if (*value != "process" && *value != "hyperv")
          throw std::invalid_argument(fmt::format("--isolation: \"{}\" is neither process nor hyperv", *value));
        cl.global.isolation = *value;
      }
    } else if (name == "systemd-cgroup") {
      cl.global.systemd_cgroup = true;
    } else if (name == "debug") {
      cl.global.debug = true;
    } else if (name == "version" || name == "v") {
      cl.version = true;
    } else if (name == "help" || name == "h") {
      cl.command = "help";
    } else {
      throw std::invalid_argument(fmt::format("unknown global flag {}", args[i]));
    }
  }
  if (i >= args.size()) return cl;
  cl.command = args[i++];
  const auto& value_flags = ValueFlagsOf(cl.command);
  bool only_positionals = false;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positionals || !arg.starts_with("-") || arg == "-") {
      cl.positionals.push_back(arg);
      // After the id, everything belongs to the command (exec ID CMD -la).
      if (cl.command == "exec") only_positionals = true;
      continue;
    }
    if (arg == "--") {
      only_positionals = true;
      continue;
    }
    std::optional<std::string> value;
    const std::string name = FlagName(arg, value);
    if (value_flags.contains(name) && !value) {
      if (++i >= args.size()) throw std::invalid_argument(fmt::format("{}: flag --{} needs a value", cl.command, name));
      value = args[i];
    }
    cl.flags[name] = value.value_or("");
  }
  return cl;
}

}  // namespace uvmshim::runc
