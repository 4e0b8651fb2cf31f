// The device allowlist: parsing linux.resources.devices, the effective rule
// list, the cgroup v1 writes and the cgroup v2 BPF program (run here by a
// small interpreter of the instructions the generator emits; the kernel runs
// it in the integration tests).
#include "guest-agent/device_rules.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

std::string ParseError(const json& rules) {
  try {
    ParseDeviceRules(rules, "spec: linux.resources.devices");
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(no error)";
}

// The subset of eBPF DeviceBpfProgram emits.
int Evaluate(const std::vector<bpf_insn>& program, uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
  uint32_t ctx[3] = {access << 16 | type, major, minor};
  uint64_t reg[11] = {};
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const bpf_insn& i = program[pc];
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W:
        if (i.src_reg != BPF_REG_1 || i.off % 4 != 0 || i.off < 0 || i.off > 8) throw std::logic_error("bad load");
        reg[i.dst_reg] = ctx[i.off / 4];
        break;
      case BPF_ALU | BPF_AND | BPF_K: reg[i.dst_reg] = static_cast<uint32_t>(reg[i.dst_reg] & static_cast<uint32_t>(i.imm)); break;
      case BPF_ALU | BPF_RSH | BPF_K: reg[i.dst_reg] = static_cast<uint32_t>(reg[i.dst_reg]) >> i.imm; break;
      case BPF_ALU | BPF_MOV | BPF_X: reg[i.dst_reg] = static_cast<uint32_t>(reg[i.src_reg]); break;
      case BPF_ALU64 | BPF_MOV | BPF_K: reg[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm)); break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (reg[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (reg[i.dst_reg] == static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += i.off;
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int>(reg[0]);
      default: throw std::logic_error("unknown instruction");
    }
  }
  throw std::logic_error("fell off the end");
}

constexpr uint32_t C = BPF_DEVCG_DEV_CHAR, B = BPF_DEVCG_DEV_BLOCK;
constexpr uint32_t R = BPF_DEVCG_ACC_READ, W = BPF_DEVCG_ACC_WRITE, M = BPF_DEVCG_ACC_MKNOD;

// containerd's default linux.resources.devices: deny all, then the defaults
// (the allows are appended by EffectiveDeviceRules anyway).
OciSpec ContainerdDefault() {
  OciSpec spec;
  spec.resources.devices = ParseDeviceRules(json::array({{{"allow", false}, {"access", "rwm"}}}), "x");
  return spec;
}

TEST(DeviceRules, ParseErrorsNameTheField) {
  EXPECT_EQ(ParseError(json::object()), "spec: linux.resources.devices must be an array");
  EXPECT_EQ(ParseError({{{"type", "c"}}}), "spec: linux.resources.devices[0].allow is required and must be a boolean");
  EXPECT_EQ(ParseError({{{"allow", true}, {"type", "x"}}}), "spec: linux.resources.devices[0].type must be one of a, c, b");
  EXPECT_EQ(ParseError({{{"allow", true}, {"access", "rx"}}}),
            "spec: linux.resources.devices[0].access must be made of r, w, m (got \"rx\")");
  EXPECT_EQ(ParseError({{{"allow", true}, {"type", "c"}, {"major", 5000}}}),
            "spec: linux.resources.devices[0].major is out of range");
  EXPECT_EQ(ParseError({{{"allow", true}, {"type", "c"}, {"minor", -2}}}),
            "spec: linux.resources.devices[0].minor is out of range");
  auto rules = ParseDeviceRules(json::array({{{"allow", true}, {"type", "c"}, {"major", 10}, {"access", "wr"}},
                                             {{"allow", false}}}),
                                "x");
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(DeviceRuleText(rules[0]), "c 10:* rw");
  EXPECT_EQ(DeviceRuleText(rules[1]), "a *:* rwm");
}

TEST(DeviceRules, EffectiveRulesAddSpecDevicesAndDefaults) {
  OciSpec spec = ContainerdDefault();
  spec.devices.push_back(OciDevice{"/dev/fuse", 'c', 10, 229});
  spec.devices.push_back(OciDevice{"/dev/fifo", 'p', 0, 0});
  auto rules = EffectiveDeviceRules(spec);
  ASSERT_GE(rules.size(), 3u);
  EXPECT_EQ(DeviceRuleText(rules[0]), "a *:* rwm");
  EXPECT_FALSE(rules[0].allow);
  EXPECT_EQ(DeviceRuleText(rules[1]), "c 10:229 rwm");
  EXPECT_TRUE(rules[1].allow);
  EXPECT_EQ(DeviceRuleText(rules[2]), "c *:* m");
  auto writes = DeviceCgroupV1Writes(rules);
  ASSERT_EQ(writes.size(), rules.size() + 1);
  EXPECT_EQ(writes[0], (std::pair<std::string, std::string>{"devices.deny", "a"}));
  EXPECT_EQ(writes[1], (std::pair<std::string, std::string>{"devices.deny", "a *:* rwm"}));
  EXPECT_EQ(writes[2], (std::pair<std::string, std::string>{"devices.allow", "c 10:229 rwm"}));
}

TEST(DeviceRules, BpfProgramEnforcesContainerdDefaults) {
  OciSpec spec = ContainerdDefault();
  spec.devices.push_back(OciDevice{"/dev/fuse", 'c', 10, 229});
  auto program = DeviceBpfProgram(EffectiveDeviceRules(spec));
  EXPECT_EQ(Evaluate(program, C, R | W, 1, 3), 1);     // /dev/null
  EXPECT_EQ(Evaluate(program, C, R | W, 1, 5), 1);     // /dev/zero
  EXPECT_EQ(Evaluate(program, C, R | W, 10, 200), 1);  // /dev/net/tun
  EXPECT_EQ(Evaluate(program, C, R | W, 136, 7), 1);   // a pty
  EXPECT_EQ(Evaluate(program, C, R | W, 5, 2), 1);     // /dev/ptmx
  EXPECT_EQ(Evaluate(program, C, R | W, 10, 229), 1);  // linux.devices entry
  EXPECT_EQ(Evaluate(program, C, R | W, 10, 232), 0);  // /dev/kvm
  EXPECT_EQ(Evaluate(program, C, R, 1, 1), 0);         // /dev/mem
  EXPECT_EQ(Evaluate(program, B, R, 7, 0), 0);         // loop0
  EXPECT_EQ(Evaluate(program, C, R | W, 245, 0), 0);   // a virtio port
  EXPECT_EQ(Evaluate(program, C, M, 10, 232), 1);      // mknod of anything: allowed
  EXPECT_EQ(Evaluate(program, B, M, 7, 0), 1);
  EXPECT_EQ(Evaluate(program, C, M | R, 10, 232), 0);
}

TEST(DeviceRules, BpfProgramOrderAndPartialAccess) {
  OciSpec spec;
  spec.resources.devices = ParseDeviceRules(
      json::array({{{"allow", true}, {"type", "a"}, {"access", "rwm"}},       // allow everything
                   {{"allow", false}, {"type", "c"}, {"major", 1}, {"access", "w"}},  // but no writes to 1:*
                   {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "w"}}}),  // except null
      "x");
  auto program = DeviceBpfProgram(EffectiveDeviceRules(spec));
  EXPECT_EQ(Evaluate(program, C, R, 1, 1), 1);
  EXPECT_EQ(Evaluate(program, C, W, 1, 1), 0);
  EXPECT_EQ(Evaluate(program, C, R | W, 1, 1), 0);
  EXPECT_EQ(Evaluate(program, C, W, 1, 3), 1);
  EXPECT_EQ(Evaluate(program, B, R | W, 8, 0), 1);
  // No rules at all: only the defaults.
  auto defaults = DeviceBpfProgram(EffectiveDeviceRules(OciSpec{}));
  EXPECT_EQ(Evaluate(defaults, C, R | W, 1, 3), 1);
  EXPECT_EQ(Evaluate(defaults, B, R, 8, 0), 0);
}

}  // namespace
}  // namespace uvmshim::agent
