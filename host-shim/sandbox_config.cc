#include "sandbox_config.h"

#include <cpptoml.h>
#include <fmt/format.h>

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace uvmshim::host {

const char* ToString(Isolation isolation) {
  return isolation == Isolation::kProcess ? "process" : "hyperv";
}

Isolation ParseIsolation(const std::string& text) {
  if (text == "process") return Isolation::kProcess;
  if (text == "hyperv") return Isolation::kHyperv;
  throw std::invalid_argument(fmt::format("isolation \"{}\": expected process or hyperv", text));
}

namespace {

void RejectUnknown(const cpptoml::table& table, const std::set<std::string>& known,
                   const std::string& where) {
  for (const auto& [key, value] : table) {
    if (!known.contains(key))
      throw std::invalid_argument(fmt::format("{}: unknown key \"{}\"", where, key));
  }
}

template <typename T>
void Read(const cpptoml::table& table, const std::string& key, T& out, const std::string& where) {
  if (!table.contains(key)) return;
  auto value = table.get_as<T>(key);
  if (!value) throw std::invalid_argument(fmt::format("{}: \"{}\" has the wrong type", where, key));
  out = *value;
}

unsigned ReadPositive(const cpptoml::table& table, const std::string& key, unsigned fallback,
                      const std::string& where) {
  int64_t value = fallback;
  Read(table, key, value, where);
  if (value <= 0 || value > (1 << 20))
    throw std::invalid_argument(fmt::format("{}: \"{}\" = {} is out of range", where, key, value));
  return static_cast<unsigned>(value);
}

}  // namespace

SandboxConfig ParseSandboxConfig(const std::string& toml_text, const std::string& origin) {
  std::shared_ptr<cpptoml::table> root;
  try {
    std::istringstream in(toml_text);
    cpptoml::parser parser(in);
    root = parser.parse();
  } catch (const cpptoml::parse_exception& e) {
    throw std::invalid_argument(fmt::format("{}: {}", origin, e.what()));
  }
  SandboxConfig config;
  RejectUnknown(*root, {"isolation", "uvm", "agent"}, origin);
  std::string isolation = ToString(config.isolation);
  Read(*root, "isolation", isolation, origin);
  config.isolation = ParseIsolation(isolation);
  if (root->contains("uvm")) {
    auto uvm = root->get_table("uvm");
    const std::string where = origin + " [uvm]";
    if (!uvm) throw std::invalid_argument(where + ": must be a table");
    RejectUnknown(*uvm, {"memory_mb", "cpus", "kernel", "initrd", "kernel_cmdline_extra",
                         "boot_timeout_seconds", "console_log"}, where);
    config.memory_mb = ReadPositive(*uvm, "memory_mb", config.memory_mb, where);
    config.cpus = ReadPositive(*uvm, "cpus", config.cpus, where);
    std::string path;
    Read(*uvm, "kernel", path, where);
    config.kernel = path;
    path.clear();
    Read(*uvm, "initrd", path, where);
    config.initrd = path;
    Read(*uvm, "kernel_cmdline_extra", config.kernel_cmdline_extra, where);
    config.boot_timeout = std::chrono::seconds(
        ReadPositive(*uvm, "boot_timeout_seconds", config.boot_timeout.count(), where));
    Read(*uvm, "console_log", config.console_log, where);
  }
  if (root->contains("agent")) {
    auto agent = root->get_table("agent");
    const std::string where = origin + " [agent]";
    if (!agent) throw std::invalid_argument(where + ": must be a table");
    RejectUnknown(*agent, {"log_level"}, where);
    Read(*agent, "log_level", config.agent_log_level, where);
  }
  return config;
}

SandboxConfig LoadSandboxConfig(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(fmt::format("runtime config {}: cannot be read", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return ParseSandboxConfig(text.str(), file.string());
}

void ApplyAnnotations(SandboxConfig& config,
                      const std::map<std::string, std::string>& annotations) {
  if (auto it = annotations.find(kIsolationAnnotation); it != annotations.end()) {
    try {
      config.isolation = ParseIsolation(it->second);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(fmt::format("annotation {}: {}", kIsolationAnnotation, e.what()));
    }
  }
}

}  // namespace uvmshim::host
