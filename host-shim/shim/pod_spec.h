// What a container's OCI spec says about its pod (CRI annotations), and the
// namespace paths an app container may join in hyperv isolation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sandbox_config.h"

namespace uvmshim::shim {

inline constexpr const char* kContainerTypeAnnotation = "io.kubernetes.cri.container-type";
inline constexpr const char* kSandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";

struct PodRole {
  enum class Kind { kLone, kSandbox, kContainer };
  Kind kind = Kind::kLone;
  std::string sandbox_id;  // the pod's sandbox id (kSandbox: the container's own id)
};

// The spec's string annotations (others ignored).
std::map<std::string, std::string> AnnotationsOf(const nlohmann::json& spec);
// Throws std::invalid_argument naming the annotation when it is inconsistent.
PodRole PodRoleOf(const std::string& container_id, const std::map<std::string, std::string>& annotations);
// For `shim start`: the sandbox id when <bundle>/config.json is an app
// container of a pod, else nullopt (unreadable specs: nullopt, Create reports them).
std::optional<std::string> PodSandboxOf(const std::filesystem::path& bundle, const std::string& container_id);

// True when the network namespace at `path` has no interface but loopback.
// Throws std::invalid_argument when it cannot be opened or joined.
bool NetnsHasOnlyLoopback(const std::string& path);

// A host network namespace a new sandbox's UVM must carry (issue #11).
struct PodNetnsRef {
  std::string path;   // e.g. CNI's /var/run/netns/cni-<uuid>
  std::string field;  // "linux.namespaces[N].path", for errors
};

// hyperv: the agent runs in the UVM, so linux.namespaces[].path must name
// what the guest can join. Keeps /proc/<pid>/ns/<type> when <pid> is the init
// of a task of this sandbox (is_sandbox_task(pid)); turns a host network
// namespace into a new guest one: with only loopback, the same view; with
// interfaces (CNI's), returned so that the new sandbox's UVM carries them
// (`starts_sandbox`; an app container of a running pod cannot bring its own).
// Refuses the host's own network namespace and everything else with
// std::invalid_argument naming the field. Process isolation: paths are host
// paths and stay as runc would use them.
std::optional<PodNetnsRef> ResolveNamespacePaths(nlohmann::json& spec, host::Isolation isolation,
                                                 const std::function<bool(std::uint32_t pid)>& is_sandbox_task,
                                                 bool starts_sandbox = true);

}  // namespace uvmshim::shim
