#include "shim/pod_spec.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <thread>

#include "common/ids.h"
#include "paths.h"

namespace uvmshim::shim {
namespace fs = std::filesystem;
using nlohmann::json;

std::map<std::string, std::string> AnnotationsOf(const json& spec) {
  std::map<std::string, std::string> annotations;
  if (spec.is_object() && spec.contains("annotations") && spec["annotations"].is_object())
    for (const auto& [key, value] : spec["annotations"].items())
      if (value.is_string()) annotations[key] = value.get<std::string>();
  return annotations;
}

PodRole PodRoleOf(const std::string& container_id, const std::map<std::string, std::string>& annotations) {
  auto type = annotations.find(kContainerTypeAnnotation);
  auto sandbox = annotations.find(kSandboxIdAnnotation);
  if (type == annotations.end()) return {};
  if (type->second == "sandbox") {
    if (sandbox != annotations.end() && sandbox->second != container_id)
      throw std::invalid_argument(fmt::format("annotation {}=\"{}\" of a sandbox container must be its own id {}",
                                              kSandboxIdAnnotation, sandbox->second, container_id));
    return {PodRole::Kind::kSandbox, container_id};
  }
  if (type->second == "container") {
    if (sandbox == annotations.end() || !IsValidId(sandbox->second))
      throw std::invalid_argument(fmt::format("annotation {}: a pod's container needs a valid {}",
                                              kContainerTypeAnnotation, kSandboxIdAnnotation));
    if (sandbox->second == container_id)
      throw std::invalid_argument(fmt::format("annotation {}: container {} names itself as its sandbox",
                                              kSandboxIdAnnotation, container_id));
    return {PodRole::Kind::kContainer, sandbox->second};
  }
  throw std::invalid_argument(fmt::format("annotation {}=\"{}\": expected sandbox or container",
                                          kContainerTypeAnnotation, type->second));
}

std::optional<std::string> PodSandboxOf(const fs::path& bundle, const std::string& container_id) {
  std::ifstream in(bundle / "config.json");
  if (!in) return std::nullopt;
  try {
    auto role = PodRoleOf(container_id, AnnotationsOf(json::parse(in)));
    if (role.kind == PodRole::Kind::kContainer) return role.sandbox_id;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

bool NetnsHasOnlyLoopback(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::invalid_argument(fmt::format("network namespace {}: {}", path, std::strerror(errno)));
  int error = 0;
  bool only_loopback = true;
  // A thread of its own joins the namespace: the shim's other threads keep theirs.
  std::thread([&] {
    if (::setns(fd, CLONE_NEWNET) != 0) {
      error = errno;
      return;
    }
    if (struct if_nameindex* names = ::if_nameindex()) {
      for (auto* n = names; n->if_index != 0; ++n)
        if (std::strcmp(n->if_name, "lo") != 0) only_loopback = false;
      ::if_freenameindex(names);
    } else {
      error = errno;
    }
  }).join();
  ::close(fd);
  if (error)
    throw std::invalid_argument(fmt::format("network namespace {}: {}", path, std::strerror(error)));
  return only_loopback;
}

namespace {

// The pid of "/proc/<pid>/ns/<type>", else nullopt.
std::optional<std::uint32_t> ProcNsPid(const std::string& path, const std::string& ns_file) {
  constexpr std::string_view kPrefix = "/proc/";
  const std::string suffix = "/ns/" + ns_file;
  if (!path.starts_with(kPrefix) || !path.ends_with(suffix) || path.size() <= kPrefix.size() + suffix.size())
    return std::nullopt;
  const std::string digits = path.substr(kPrefix.size(), path.size() - kPrefix.size() - suffix.size());
  std::uint32_t pid = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid == 0) return std::nullopt;
  return pid;
}

std::string NsFileOf(const std::string& type) {
  if (type == "network") return "net";
  if (type == "mount") return "mnt";
  return type;
}

}  // namespace

void ResolveNamespacePaths(json& spec, host::Isolation isolation,
                           const std::function<bool(std::uint32_t)>& is_sandbox_task) {
  if (isolation != host::Isolation::kHyperv) return;
  if (!spec.contains("linux") || !spec["linux"].is_object() || !spec["linux"].contains("namespaces") ||
      !spec["linux"]["namespaces"].is_array())
    return;
  auto& namespaces = spec["linux"]["namespaces"];
  for (std::size_t i = 0; i < namespaces.size(); ++i) {
    auto& ns = namespaces[i];
    if (!ns.is_object() || !ns.contains("path") || !ns["path"].is_string()) continue;
    const std::string path = ns["path"].get<std::string>();
    const std::string type = ns.contains("type") && ns["type"].is_string() ? ns["type"].get<std::string>() : "";
    if (path.empty()) continue;
    const std::string field = fmt::format("linux.namespaces[{}].path", i);
    if (auto pid = ProcNsPid(path, NsFileOf(type))) {
      if (!is_sandbox_task(*pid))
        throw std::invalid_argument(fmt::format(
            "{} \"{}\": in hyperv isolation a namespace path must name /proc/<pid>/ns/{} of a task of "
            "this pod (pid {} is none)", field, path, NsFileOf(type), *pid));
      continue;  // a guest path: the agent checks it again
    }
    if (type == "network") {
      if (!NetnsHasOnlyLoopback(path))
        throw std::invalid_argument(fmt::format(
            "{} \"{}\": networking for hyperv pods is not implemented yet (issue #11)", field, path));
      ns.erase("path");  // loopback only: a new guest netns gives the same view
      continue;
    }
    throw std::invalid_argument(fmt::format(
        "{} \"{}\": in hyperv isolation only /proc/<pid>/ns/{} of a task of this pod can be joined",
        field, path, NsFileOf(type)));
  }
}

}  // namespace uvmshim::shim
