// libFuzzer target: a config.json (or an exec's process object, or an
// update's resources object) as a peer of the agent sends it, through every
// parser and check that runs before a container exists: ParseOciSpec, the
// field policy, seccomp compilation, the device rules (cgroup v1 lines and
// the v2 BPF program), mount options, hooks. Errors must be SpecError; a
// spec that is accepted must be internally consistent.
#include <cstdint>
#include <string>
#include <string_view>

#include "guest-agent/device_rules.h"
#include "guest-agent/hooks.h"
#include "guest-agent/mounts.h"
#include "guest-agent/oci_spec.h"
#include "guest-agent/seccomp.h"
#include "guest-agent/spec_policy.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace uvmshim::agent;
using uvmshim::fuzz::Check;
using uvmshim::fuzz::HasNoNul;

// A fixed machine, so a run does not depend on the host it runs on.
PolicyEnvironment Environment(bool in_utility_vm) {
  PolicyEnvironment environment;
  environment.in_utility_vm = in_utility_vm;
  environment.swap_total_kb = 1024;
  return environment;
}

void CheckProcess(const OciProcess& process) {
  for (const auto& arg : process.args) Check(HasNoNul(arg), "process.args with NUL accepted");
  for (const auto& env : process.env) Check(HasNoNul(env), "process.env with NUL accepted");
  Check(HasNoNul(process.cwd), "process.cwd with NUL accepted");
}

void FuzzSpec(std::string_view text, bool in_utility_vm) {
  OciSpec spec;
  try {
    spec = ParseOciSpec(text);
  } catch (const SpecError&) {
    return;
  }
  Check(text.size() <= kMaxSpecBytes, "oversized spec accepted");
  CheckProcess(spec.process);
  Check(HasNoNul(spec.root_path), "root.path with NUL accepted");
  for (const auto& mount : spec.mounts) {
    Check(HasNoNul(mount.destination) && HasNoNul(mount.source) && HasNoNul(mount.type), "mount with NUL accepted");
    for (const auto& option : mount.options) Check(HasNoNul(option), "mount option with NUL accepted");
    ParseMountOptions(mount.options);
  }
  for (const auto& path : spec.masked_paths) Check(HasNoNul(path), "maskedPaths with NUL accepted");
  for (const auto& path : spec.readonly_paths) Check(HasNoNul(path), "readonlyPaths with NUL accepted");
  for (const auto& device : spec.devices) Check(HasNoNul(device.path), "device path with NUL accepted");
  try {
    CheckSpecPolicy(text, Environment(in_utility_vm));
  } catch (const SpecError&) {
  }
  // libseccomp needs milliseconds for a Docker-sized profile (300 names):
  // small profiles keep the fuzzer fast; the parser sees every size.
  size_t seccomp_names = 0;
  if (spec.seccomp)
    for (const auto& rule : spec.seccomp->rules) seccomp_names += rule.names.size();
  if (spec.seccomp && seccomp_names <= 32) {
    try {
      auto program = CompileSeccompProfile(*spec.seccomp);
      Check(program && !program->instructions.empty(), "empty seccomp program");
      auto again = SeccompProgramFromHex(SeccompProgramToHex(*program), program->flags);
      Check(again && again->instructions.size() == program->instructions.size(), "seccomp hex round trip");
    } catch (const SpecError&) {
    }
  }
  const auto rules = EffectiveDeviceRules(spec);
  for (const auto& rule : rules) Check(!rule.access.empty() && rule.access.size() <= 3, "device rule access");
  DeviceCgroupV1Writes(rules);
  Check(!DeviceBpfProgram(rules).empty(), "empty device program");
  try {
    const auto hooks = ParseOciHooks(text);
    for (const auto* stage : {&hooks.prestart, &hooks.create_runtime, &hooks.poststart, &hooks.poststop})
      for (const auto& hook : *stage) {
        Check(!hook.path.empty() && hook.path.front() == '/' && HasNoNul(hook.path), "hook path");
        for (const auto& arg : hook.args) Check(HasNoNul(arg), "hook arg with NUL accepted");
      }
  } catch (const SpecError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  FuzzSpec(text, size % 2 == 0);
  try {
    CheckProcess(ParseOciProcess(text));
    CheckProcessPolicy(text, Environment(false));
  } catch (const SpecError&) {
  }
  try {
    ParseOciResources(text);
  } catch (const SpecError&) {
  }
  return 0;
}
