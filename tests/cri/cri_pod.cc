#include "cri_pod.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <cstdio>
#include <algorithm>

namespace uvmshim::cri {

namespace fs = std::filesystem;

v1::PodSandboxConfig MakePodConfig(CriEnv& env, const PodOptions& options) {
  v1::PodSandboxConfig config;
  auto* metadata = config.mutable_metadata();
  metadata->set_name(options.name);
  metadata->set_namespace_("uvmshim-cri");  // protoc appends _ to C++ keywords
  metadata->set_uid("uid-" + options.name);
  metadata->set_attempt(0);
  if (!options.hostname.empty()) config.set_hostname(options.hostname);
  const fs::path logs = env.work_dir() / "logs" / options.name;
  fs::create_directories(logs);
  config.set_log_directory(logs.string());
  auto* dns = config.mutable_dns_config();
  for (const auto& s : options.dns_servers) dns->add_servers(s);
  for (const auto& s : options.dns_searches) dns->add_searches(s);
  for (const auto& s : options.dns_options) dns->add_options(s);
  (*config.mutable_labels())["io.uvmshim.test/pod"] = options.name;
  for (const auto& [k, v] : options.annotations) (*config.mutable_annotations())[k] = v;
  auto* linux = config.mutable_linux();
  linux->set_cgroup_parent(env.CgroupParent(options.name));
  auto* ns = linux->mutable_security_context()->mutable_namespace_options();
  ns->set_network(v1::POD);
  ns->set_ipc(v1::POD);
  ns->set_pid(options.share_pid ? v1::POD : v1::CONTAINER);
  return config;
}

v1::ContainerConfig MakeContainerConfig(const ContainerOptions& options, const v1::PodSandboxConfig& pod) {
  v1::ContainerConfig config;
  // Unset means POD for every namespace (pid too): say what the pod asked, as kubelet does.
  *config.mutable_linux()->mutable_security_context()->mutable_namespace_options() =
      pod.linux().security_context().namespace_options();
  config.mutable_metadata()->set_name(options.name);
  config.mutable_image()->set_image(kBusyboxImage);
  for (const auto& arg : options.command) config.add_command(arg);
  for (const auto& m : options.mounts) *config.add_mounts() = m;
  config.set_log_path(options.name + ".log");
  (*config.mutable_labels())["io.uvmshim.test/container"] = options.name;
  for (const auto& [k, v] : options.annotations) (*config.mutable_annotations())[k] = v;
  if (options.memory_limit_bytes > 0) {
    auto* resources = config.mutable_linux()->mutable_resources();
    resources->set_memory_limit_in_bytes(options.memory_limit_bytes);
    // No swap beyond the limit, so the limit is what the process meets.
    resources->set_memory_swap_limit_in_bytes(options.memory_limit_bytes);
  }
  return config;
}

v1::Mount BindMount(const fs::path& host, const std::string& container, bool readonly) {
  v1::Mount m;
  m.set_host_path(host.string());
  m.set_container_path(container);
  m.set_readonly(readonly);
  return m;
}

std::optional<long> InfoPid(const google::protobuf::Map<std::string, std::string>& info) {
  auto it = info.find("info");
  if (it == info.end()) return std::nullopt;
  auto json = nlohmann::json::parse(it->second, nullptr, false);
  if (json.is_discarded() || !json.contains("pid") || !json["pid"].is_number()) return std::nullopt;
  return json["pid"].get<long>();
}

std::optional<std::string> PodNetnsPath(const v1::PodSandboxStatusResponse& verbose_status) {
  auto it = verbose_status.info().find("info");
  if (it == verbose_status.info().end()) return std::nullopt;
  auto json = nlohmann::json::parse(it->second, nullptr, false);
  if (json.is_discarded()) return std::nullopt;
  auto spec = json.value("runtimeSpec", nlohmann::json::object());
  for (const auto& ns : spec.value("linux", nlohmann::json::object())
                            .value("namespaces", nlohmann::json::array())) {
    if (ns.value("type", "") == "network" && !ns.value("path", "").empty()) {
      return ns["path"].get<std::string>();
    }
  }
  return std::nullopt;
}

std::vector<pid_t> PidsNamedUnder(const fs::path& dir, const std::string& exe_prefix) {
  std::vector<pid_t> out;
  for (pid_t pid : e2e::PidsReferringTo(dir)) {
    auto exe = e2e::ProcessExeName(pid);
    if (exe && exe->rfind(exe_prefix, 0) == 0) out.push_back(pid);
  }
  // A program that forks itself (virtiofsd's sandbox: a child in its own pid
  // namespace) is one instance: keep only those whose parent is not another.
  std::vector<pid_t> instances;
  for (pid_t pid : out) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    pid_t parent = 0;
    if (auto close = text.rfind(')'); close != std::string::npos)
      std::sscanf(text.c_str() + close + 1, " %*c %d", &parent);
    if (std::find(out.begin(), out.end(), parent) == out.end()) instances.push_back(pid);
  }
  return instances;
}

std::vector<CriLogLine> ReadCriLog(const fs::path& file) {
  std::vector<CriLogLine> lines;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    CriLogLine parsed;
    size_t a = line.find(' ');
    size_t b = a == std::string::npos ? a : line.find(' ', a + 1);
    size_t c = b == std::string::npos ? b : line.find(' ', b + 1);
    if (c == std::string::npos) {
      parsed.text = line;  // malformed: kept whole, fields empty, so a check shows it
    } else {
      parsed.time = line.substr(0, a);
      parsed.stream = line.substr(a + 1, b - a - 1);
      parsed.tag = line.substr(b + 1, c - b - 1);
      parsed.text = line.substr(c + 1);
    }
    lines.push_back(std::move(parsed));
  }
  return lines;
}

}  // namespace uvmshim::cri
