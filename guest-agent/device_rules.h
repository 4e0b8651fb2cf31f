// The device allowlist (`linux.resources.devices` plus the spec's
// `linux.devices` plus runc's always-allowed devices) and its two
// enforcements: the lines a cgroup v1 devices controller takes, and a
// BPF_PROG_TYPE_CGROUP_DEVICE program for cgroup v2.
//
// Semantics (as runc): everything starts denied, then the rules apply in
// order, a later match overriding an earlier one. An allow rule matches a
// request whose access bits it all grants; a deny rule matches a request
// asking for any of its access bits.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

namespace uvmshim::agent {

struct OciSpec;

struct DeviceRule {
  bool allow = false;
  char type = 'a';      // a (all), c, b
  int64_t major = -1;   // -1: any
  int64_t minor = -1;   // -1: any
  std::string access = "rwm";  // a non-empty subset of r, w, m

  bool operator==(const DeviceRule&) const = default;
};

// Parses `linux.resources.devices`. Throws SpecError naming the field.
std::vector<DeviceRule> ParseDeviceRules(const nlohmann::json& value, const std::string& where);

// The rules to enforce for a spec: its resources.devices, then an allow of
// each linux.devices node, then runc's default allowed devices (null, zero,
// full, random, urandom, tty, console, ptmx, pts, net/tun, mknod of any).
std::vector<DeviceRule> EffectiveDeviceRules(const OciSpec& spec);

// "c 1:3 rwm" / "a *:* rwm".
std::string DeviceRuleText(const DeviceRule& rule);

// cgroup v1: (file, line) writes in order, starting with devices.deny "a".
std::vector<std::pair<std::string, std::string>> DeviceCgroupV1Writes(const std::vector<DeviceRule>& rules);

// cgroup v2: the program (returns 1 = allow, 0 = deny).
std::vector<bpf_insn> DeviceBpfProgram(const std::vector<DeviceRule>& rules);

// Loads the program and attaches it to the cgroup directory `cgroup_dir`
// (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI; the attachment keeps it alive).
// Returns "" or an error text (with the verifier's log when it refused).
std::string AttachDeviceBpfProgram(const std::string& cgroup_dir, const std::vector<bpf_insn>& program);

}  // namespace uvmshim::agent
