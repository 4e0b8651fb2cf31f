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

// Options of runc and crun that the agent does not implement. Passed on they
// would be silently dropped (bind mounts ignore data) or fail late inside the
// container's mount namespace with a bare EINVAL; refused here by name.
constexpr const char* kUnsupportedOptions[] = {
    "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
    "rnoatime", "ratime", "rnodiratime", "rdiratime", "rrelatime", "rnorelatime",
    "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
    "nosymfollow", "symfollow", "idmap", "ridmap", "tmpcopyup", "copy-symlink", "remount",
};

std::string MountError(const OciMount& mount) {
  for (const auto& option : mount.options)
    for (const char* unsupported : kUnsupportedOptions)
      if (option == unsupported) return "options: \"" + option + "\" is not supported";
  MountOptions parsed = ParseMountOptions(mount.options);
  bool bind = parsed.bind || mount.type == "bind";
  if (bind) {
    // The agent bind-mounts the source as it sees it; runc would resolve a
    // relative one against the bundle, which the agent does not know.
    if (mount.source.empty()) return "source: a bind mount needs a source";
    if (mount.source.front() != '/') return "source: \"" + mount.source + "\" must be an absolute path for a bind mount";
    // A bind mount takes flags and propagation only: data would be dropped.
    if (!parsed.data.empty()) return "options: \"" + parsed.data + "\" cannot apply to a bind mount";
  } else if (mount.type.empty()) {
    return "type: empty (set a filesystem type, or \"bind\" with a source)";
  }
  return "";
}

// Everything that can be refused in the mounts before the container's mount
// namespace exists: options the agent cannot honour, bind mounts without an
// absolute source, mounts without a type.
void CheckMounts(const OciSpec& spec) {
  for (size_t i = 0; i < spec.mounts.size(); ++i)
    if (auto error = MountError(spec.mounts[i]); !error.empty())
      Invalid("spec: mounts[" + std::to_string(i) + "]." + error + " (destination " + spec.mounts[i].destination + ")");
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
