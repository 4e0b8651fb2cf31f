// The checks of a CreateContainer / ExecProcess request that need no running
// container: ids, the spec's or process's JSON, the field policy, seccomp
// compilation, the device rules, mount options. Container::Create/Exec run
// them first; the request fuzzer (tests/fuzz) runs them alone, so what it
// proves holds for what the agent accepts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "guest-agent/oci_spec.h"
#include "guest-agent/seccomp.h"
#include "guest-agent/spec_policy.h"

namespace uvmshim::agent {

namespace pb = ::uvmshim::agent::v1;

struct CheckedCreate {
  OciSpec spec;
  std::string rootfs;                               // absolute; not yet stat()ed
  std::shared_ptr<const SeccompProgram> seccomp;    // null without linux.seccomp
  std::vector<std::string> warnings;                // unknown spec fields, for the log
};

// Throws uvmshim::Error (kInvalidArgument, or kResourceExhausted for an
// oversized spec) with a message naming the field.
CheckedCreate CheckCreateRequest(const pb::CreateContainerRequest& request, const PolicyEnvironment& environment);

struct CheckedExec {
  OciProcess process;
  std::vector<std::string> warnings;
};

// Throws uvmshim::Error as CheckCreateRequest.
CheckedExec CheckExecRequest(const pb::ExecProcessRequest& request, const PolicyEnvironment& environment);

}  // namespace uvmshim::agent
