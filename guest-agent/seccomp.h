// Seccomp from the OCI spec (`linux.seccomp`): the profile's parsed form, its
// compilation to a classic BPF program with libseccomp (done by the agent
// before any fork: allocation is fine there), and the raw load in a child
// (async-signal-safe: children share the agent's memory, see spawn.h).
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace uvmshim::agent {

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  int op = 0;  // enum scmp_compare
};

struct SeccompRule {
  std::vector<std::string> names;
  uint32_t action = 0;  // libseccomp's SCMP_ACT_* value, errno/trace data included
  std::vector<SeccompArg> args;
};

struct SeccompProfile {
  uint32_t default_action = 0;
  std::vector<uint32_t> architectures;  // libseccomp SCMP_ARCH_* tokens
  unsigned int flags = 0;               // SECCOMP_FILTER_FLAG_*
  std::vector<SeccompRule> rules;
};

// Parses the `linux.seccomp` object. Errors name the field, e.g.
//   "spec: linux.seccomp.syscalls[3].action is an unknown action \"X\"".
// Throws SpecError.
SeccompProfile ParseSeccompProfile(const nlohmann::json& value, const std::string& where);

// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  unsigned int flags = 0;
};

// Compiles with libseccomp. Syscall names this libseccomp does not know are
// skipped (as runc does). Throws SpecError naming the field on anything the
// library refuses.
std::shared_ptr<const SeccompProgram> CompileSeccompProfile(const SeccompProfile& profile);

// async-signal-safe: installs the filter on the calling thread (with
// SECCOMP_FILTER_FLAG_TSYNC: its thread group). Needs no_new_privs or
// CAP_SYS_ADMIN. Returns 0 or an errno.
int LoadSeccompProgram(const SeccompProgram& program) noexcept;

// The instructions as hex text and back, to hand a compiled program to the
// init helper (a fresh exec of the agent) without compiling it twice.
std::string SeccompProgramToHex(const SeccompProgram& program);
std::shared_ptr<const SeccompProgram> SeccompProgramFromHex(const std::string& hex, unsigned int flags);

}  // namespace uvmshim::agent
