#include "guest-agent/request_checks.h"

#include "guest-agent/device_rules.h"
#include "common/ids.h"
#include "guest-agent/launcher.h"
#include "guest-agent/mounts.h"

namespace uvmshim::agent {
namespace {

[[noreturn]] void Invalid(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

// Everything that can be refused in the mounts before the container's mount
// namespace exists: their options.
void CheckMounts(const OciSpec& spec) {
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    try {
      ParseMountOptions(spec.mounts[i].options);
    } catch (const std::exception& e) {
      Invalid("spec: mounts[" + std::to_string(i) + "].options: " + e.what());
    }
  }
}

}  // namespace

CheckedCreate CheckCreateRequest(const pb::CreateContainerRequest& request, const PolicyEnvironment& environment) {
  if (auto error = IdError("container id", request.container_id()); !error.empty()) Invalid(error);
  CheckedCreate checked;
  try {
    checked.spec = ParseOciSpec(request.spec_json());
    // Every field honoured or refused by name (spec_policy.h).
    checked.warnings = CheckSpecPolicy(request.spec_json(), environment);
  } catch (const SpecTooLarge& e) {
    throw Error(ErrorCode::kResourceExhausted, e.what());
  } catch (const SpecError& e) {
    Invalid(e.what());
  }
  checked.rootfs = request.rootfs_path().empty() ? checked.spec.root_path : request.rootfs_path();
  if (checked.rootfs.empty()) Invalid("no rootfs: set rootfs_path or spec root.path");
  if (checked.rootfs.front() != '/') Invalid("rootfs " + checked.rootfs + " is not an absolute path");
  if (checked.rootfs.find('\0') != std::string::npos) Invalid("rootfs contains a NUL character");
  CheckMounts(checked.spec);
  if (checked.spec.seccomp) {
    try {
      checked.seccomp = CompileSeccompProfile(*checked.spec.seccomp);
    } catch (const SpecError& e) {
      Invalid(e.what());
    }
  }
  return checked;
}

CheckedExec CheckExecRequest(const pb::ExecProcessRequest& request, const PolicyEnvironment& environment) {
  if (request.exec_id().empty()) Invalid("exec id is empty");
  if (auto error = IdError("exec id", request.exec_id()); !error.empty()) Invalid(error);
  CheckedExec checked;
  try {
    checked.process = ParseOciProcess(request.process_json());
    checked.warnings = CheckProcessPolicy(request.process_json(), environment);
  } catch (const SpecTooLarge& e) {
    throw Error(ErrorCode::kResourceExhausted, e.what());
  } catch (const SpecError& e) {
    Invalid(e.what());
  }
  return checked;
}

}  // namespace uvmshim::agent
