// What a CreateTaskRequest asks for, read and checked before anything starts:
// the runtime configuration, the bundle's OCI spec, the rootfs; and the
// conversion of agent stats into containerd's metrics.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include <google/protobuf/any.pb.h>
#include <nlohmann/json.hpp>

#include "agent_client.h"
#include "containerd/events/task.pb.h"
#include "containerd/task/v2/shim.pb.h"
#include "sandbox_config.h"
#include "shim/rootfs_mount.h"

namespace uvmshim::shim {

// The runtime configuration for a Create: runtime options (ctr
// --runtime-config-path, CRI options.ConfigPath), else $UVMSHIM_CONFIG, else
// /etc/uvmshim/config.toml when present, else defaults. Throws std::invalid_argument.
host::SandboxConfig ResolveConfig(const ::containerd::task::v2::CreateTaskRequest& request);

// ResolveConfig with the spec's annotations applied: isolation, and for a
// pod's sandbox (or a lone container with io.uvmshim.vm.* overrides) the UVM size.
host::SandboxConfig SandboxConfigFor(const ::containerd::task::v2::CreateTaskRequest& request,
                                     const std::map<std::string, std::string>& annotations);

// The /tasks/create event of a created task.
::containerd::events::TaskCreate CreateEventOf(const ::containerd::task::v2::CreateTaskRequest& request,
                                               std::uint32_t pid);

// UpdateTaskRequest.resources as the agent takes it (LinuxResources JSON);
// throws std::invalid_argument for another type or bad JSON.
std::string ResourcesJsonOf(const ::containerd::task::v2::UpdateTaskRequest& request);

// <bundle>/config.json, parsed; throws std::invalid_argument naming the file.
nlohmann::json ReadBundleSpec(const std::filesystem::path& bundle);

// Mounts the request's rootfs (onto <bundle>/rootfs, held by `mount`) or
// resolves the spec's root.path; returns the host rootfs directory. Throws
// std::invalid_argument when it is not a directory.
std::filesystem::path MountRootfs(const ::containerd::task::v2::CreateTaskRequest& request,
                                  const nlohmann::json& spec, RootfsMount& mount);

// io.containerd.cgroups.v1.Metrics from the agent's stats.
google::protobuf::Any MetricsOf(const host::agentpb::StatsResponse& stats);

}  // namespace uvmshim::shim
