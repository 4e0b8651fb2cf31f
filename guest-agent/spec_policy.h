// What the agent does with every field of the OCI runtime spec (config.md and
// config-linux.md, up to runtime-spec 1.2): each field is honoured, refused
// with an error naming it, or (metadata only) accepted without effect. A field
// is never dropped silently. The table in spec_policy.cc is the one place
// this is decided; README.md "Security" shows it.
//
// Rules:
//  - A refused field fails the create only when it asks for something: null,
//    "", [], {}, false (and for blockIO weights, 0: Docker's "unset") ask for
//    nothing and pass. So an empty `hooks` object or `hugepageLimits: []`
//    are accepted.
//  - A key the table does not know (a newer spec version, a typo) is accepted
//    with a warning in the agent's log, as runc ignores unknown JSON keys.
//    Fields of newer spec versions that request protections are listed in the
//    table and refused (memoryPolicy, netDevices, execCPUAffinity, ...).
//  - linux.seccomp and linux.resources.devices are honoured (seccomp.cc,
//    device rules), their contents are validated there.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace uvmshim::agent {

// What the machine the containers run on offers (the host in process
// isolation, the utility VM in hyperv).
struct PolicyEnvironment {
  bool in_utility_vm = false;
  bool apparmor = false;          // AppArmor enabled in this kernel
  bool selinux = false;           // SELinux enabled in this kernel
  uint64_t swap_total_kb = 0;     // /proc/meminfo SwapTotal
  uint64_t hugepages_total = 0;   // /proc/meminfo HugePages_Total
  // The agent's own namespaces (st_dev, st_ino of /proc/self/ns/X): a
  // container joining one by path shares the host's (or the VM's).
  struct NamespaceId {
    uint64_t dev = 0, ino = 0;
  };
  NamespaceId own_net, own_ipc, own_uts;

  static PolicyEnvironment Probe(bool in_utility_vm);
};

enum class FieldVerdict {
  kHonoured,    // applied as the spec says
  kRefused,     // fails the create when set
  kConditional, // honoured or refused depending on the value or the machine
  kAccepted,    // metadata, or placement decided by the runtime: no protection asked
  kObject,      // a container of other fields (not a verdict of its own)
};

struct FieldPolicy {
  std::string_view path;   // "linux.resources.memory.swap"; arrays of objects as "mounts[]"
  FieldVerdict verdict;
  std::string_view note;   // why / how, shown in errors and in the README table
};

// Every field the agent knows, in spec order.
const std::vector<FieldPolicy>& SpecFieldTable();

// Checks a whole config.json (already accepted by ParseOciSpec). Throws
// SpecError "spec: <field> ..." for the first refused field; returns the
// warnings (unknown fields) for the log.
std::vector<std::string> CheckSpecPolicy(std::string_view spec_json, const PolicyEnvironment& environment);

// The same for an exec's process object; errors read "process: <field> ...".
std::vector<std::string> CheckProcessPolicy(std::string_view process_json, const PolicyEnvironment& environment);

}  // namespace uvmshim::agent
