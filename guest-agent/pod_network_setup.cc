#include "guest-agent/pod_network_setup.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "guest-agent/launcher.h"
#include "guest-agent/logging.h"
#include "guest-agent/netconfig.h"
#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {

void CheckNetworkRequest(const pb::CreateContainerRequest& request) {
  try {
    ValidatePodNetwork(request.network());
  } catch (const std::invalid_argument& e) {
    throw Error(ErrorCode::kInvalidArgument, e.what());
  }
  OciSpec spec;
  try {
    spec = ParseOciSpec(request.spec_json());
  } catch (const SpecError&) {
    return;  // Container::Create reports the spec with its own status
  }
  const OciNamespace* net = spec.FindNamespace("network");
  if (!net || !net->path.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "network: the pod's interfaces need a new network namespace (linux.namespaces: "
                "{\"type\": \"network\"} without a path)");
}

void ConfigureNetworkOrDestroy(const pb::CreateContainerRequest& request, Container& container, Reaper& reaper) {
  try {
    ConfigurePodNetwork(request.network(), container.init()->pid());
  } catch (const std::exception& e) {
    try {
      container.Destroy(/*force=*/true, reaper);
    } catch (const std::exception& destroy_error) {
      spdlog::warn("event=destroy_failed container={} error={}", request.container_id(),
                   LogQuote(destroy_error.what()));
    }
    throw Error(dynamic_cast<const std::invalid_argument*>(&e) ? ErrorCode::kInvalidArgument
                                                               : ErrorCode::kFailedPrecondition,
                e.what());
  }
}

}  // namespace uvmshim::agent
