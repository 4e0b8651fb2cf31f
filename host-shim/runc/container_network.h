// The network Docker or Podman prepared for a container, brought into its
// sandbox the way the containerd shim brings CRI's:
//  - Podman (CNI/netavark) names a filled network namespace in the spec
//    (linux.namespaces network path): process isolation joins it as runc
//    does; hyperv gives its interfaces to the utility VM (netns/*).
//  - Docker (libnetwork) asks for a new network namespace and fills it from a
//    prestart hook that reads the state's pid (the monitor's): the monitor
//    makes that namespace (unshare) and holds it by fd while the hooks run,
//    then returns to its own; process isolation: the container joins it;
//    hyperv: its interfaces go to the utility VM, which boots after the hooks.
// Before-start hooks run here, in the container's network namespace's view of
// /proc/<monitor pid>/ns/net, whatever the spec asks for.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "runc/host_hooks.h"
#include "sandbox_config.h"
#include "shim/pod_spec.h"

namespace uvmshim::runc {

class ContainerNetwork {
 public:
  // Runs `hooks.prestart` and `hooks.createRuntime` (state from `state_json`)
  // and rewrites `spec`'s namespace paths for the agent. Throws
  // std::invalid_argument naming the field or std::runtime_error (a hook
  // failed); nothing is left then (the namespace made here ends with it).
  static ContainerNetwork Prepare(nlohmann::json& spec, host::Isolation isolation, const HostHooks& hooks,
                                  const std::string& state_json);

  // hyperv: the host namespace whose interfaces the utility VM carries.
  const std::optional<shim::PodNetnsRef>& vm_network() const { return vm_network_; }

 private:
  UniqueFd made_;  // the namespace made for Docker: it lives as long as the monitor
  std::optional<shim::PodNetnsRef> vm_network_;
};

}  // namespace uvmshim::runc
