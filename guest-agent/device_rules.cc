#include "guest-agent/device_rules.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

[[noreturn]] void Fail(const std::string& where, const std::string& what) { throw SpecError(where + " " + what); }

// runc's specconv.AllowedDevices rules: always appended.
std::vector<DeviceRule> DefaultAllowedDevices() {
  return {
      {true, 'c', -1, -1, "m"},    {true, 'b', -1, -1, "m"},   {true, 'c', 1, 3, "rwm"},  // null
      {true, 'c', 1, 8, "rwm"},    {true, 'c', 1, 7, "rwm"},                              // random, full
      {true, 'c', 5, 0, "rwm"},    {true, 'c', 1, 5, "rwm"},                              // tty, zero
      {true, 'c', 1, 9, "rwm"},    {true, 'c', 5, 1, "rwm"},                              // urandom, console
      {true, 'c', 136, -1, "rwm"}, {true, 'c', 5, 2, "rwm"},                              // pts, ptmx
      {true, 'c', 10, 200, "rwm"},                                                         // net/tun
  };
}

uint32_t AccessBits(const std::string& access) {
  uint32_t bits = 0;
  for (char c : access) bits |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  return bits;
}

constexpr uint32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

bpf_insn LoadWord(uint8_t dst, int16_t offset) { return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, BPF_REG_1, offset, 0); }
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) { return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn JumpImm(uint8_t op, uint8_t reg, int32_t imm, int16_t off) { return Insn(BPF_JMP | op | BPF_K, reg, 0, off, imm); }
bpf_insn Return(int32_t value) { return Insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, value); }
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

}  // namespace

std::vector<DeviceRule> ParseDeviceRules(const json& value, const std::string& where) {
  if (!value.is_array()) Fail(where, "must be an array");
  std::vector<DeviceRule> rules;
  for (size_t i = 0; i < value.size(); ++i) {
    const json& item = value[i];
    std::string w = where + "[" + std::to_string(i) + "]";
    if (!item.is_object()) Fail(w, "must be an object");
    DeviceRule rule;
    auto allow = item.find("allow");
    if (allow == item.end() || !allow->is_boolean()) Fail(w + ".allow", "is required and must be a boolean");
    rule.allow = allow->get<bool>();
    if (auto type = item.find("type"); type != item.end() && !type->is_null()) {
      if (!type->is_string() || type->get<std::string>().size() != 1 ||
          std::string_view("acb").find(type->get<std::string>()[0]) == std::string_view::npos)
        Fail(w + ".type", "must be one of a, c, b");
      rule.type = type->get<std::string>()[0];
    }
    for (auto [key, field] : {std::pair{"major", &rule.major}, std::pair{"minor", &rule.minor}}) {
      auto number = item.find(key);
      if (number == item.end() || number->is_null()) continue;
      if (!number->is_number_integer()) Fail(w + "." + key, "must be an integer");
      int64_t v = number->get<int64_t>();
      // Linux dev_t: 12-bit major, 20-bit minor; -1 = any.
      if (v < -1 || v > (std::string_view(key) == "major" ? 0xfff : 0xfffff)) Fail(w + "." + key, "is out of range");
      *field = v;
    }
    if (auto access = item.find("access"); access != item.end() && !access->is_null()) {
      if (!access->is_string()) Fail(w + ".access", "must be a string");
      std::string text = access->get<std::string>();
      std::string normal;
      for (char c : std::string("rwm"))
        if (text.find(c) != std::string::npos) normal.push_back(c);
      if (text.find_first_not_of("rwm") != std::string::npos)
        Fail(w + ".access", "must be made of r, w, m (got \"" + text + "\")");
      // runc: an empty access string means all of rwm.
      rule.access = normal.empty() ? "rwm" : normal;
    }
    if (rule.type == 'a') rule.major = rule.minor = -1;
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::vector<DeviceRule> EffectiveDeviceRules(const OciSpec& spec) {
  std::vector<DeviceRule> rules = spec.resources.devices;
  for (const auto& device : spec.devices) {
    if (device.type != 'c' && device.type != 'u' && device.type != 'b') continue;  // a fifo needs no rule
    rules.push_back(DeviceRule{true, device.type == 'b' ? 'b' : 'c', device.major, device.minor, "rwm"});
  }
  for (auto& rule : DefaultAllowedDevices()) rules.push_back(std::move(rule));
  return rules;
}

std::string DeviceRuleText(const DeviceRule& rule) {
  auto number = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
  return std::string(1, rule.type) + " " + number(rule.major) + ":" + number(rule.minor) + " " + rule.access;
}

std::vector<std::pair<std::string, std::string>> DeviceCgroupV1Writes(const std::vector<DeviceRule>& rules) {
  std::vector<std::pair<std::string, std::string>> writes{{"devices.deny", "a"}};
  for (const auto& rule : rules)
    writes.emplace_back(rule.allow ? "devices.allow" : "devices.deny", DeviceRuleText(rule));
  return writes;
}

std::vector<bpf_insn> DeviceBpfProgram(const std::vector<DeviceRule>& rules) {
  // struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; }
  std::vector<bpf_insn> program = {
      LoadWord(BPF_REG_2, 0), Alu32Imm(BPF_AND, BPF_REG_2, 0xffff),  // r2 = type
      LoadWord(BPF_REG_3, 0), Alu32Imm(BPF_RSH, BPF_REG_3, 16),      // r3 = access
      LoadWord(BPF_REG_4, 4),                                         // r4 = major
      LoadWord(BPF_REG_5, 8),                                         // r5 = minor
  };
  // The last matching rule decides: test the rules from the last one.
  for (auto rule = rules.rbegin(); rule != rules.rend(); ++rule) {
    // Each condition jumps past the block when it does not hold; the
    // offsets are filled in once the block's length is known.
    std::vector<bpf_insn> block;
    std::vector<size_t> exits;
    auto skip_unless = [&](bpf_insn jump) {
      exits.push_back(block.size());
      block.push_back(jump);
    };
    if (rule->type != 'a')
      skip_unless(JumpImm(BPF_JNE, BPF_REG_2, rule->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0));
    uint32_t access = AccessBits(rule->access);
    if (access != kAllAccess) {
      block.push_back(Mov32Reg(BPF_REG_1, BPF_REG_3));
      if (rule->allow) {
        // every requested bit granted: (request & ~access) == 0
        block.push_back(Alu32Imm(BPF_AND, BPF_REG_1, static_cast<int32_t>(~access & kAllAccess)));
        skip_unless(JumpImm(BPF_JNE, BPF_REG_1, 0, 0));
      } else {
        // any requested bit denied: (request & access) != 0
        block.push_back(Alu32Imm(BPF_AND, BPF_REG_1, static_cast<int32_t>(access)));
        skip_unless(JumpImm(BPF_JEQ, BPF_REG_1, 0, 0));
      }
    }
    if (rule->major >= 0) skip_unless(JumpImm(BPF_JNE, BPF_REG_4, static_cast<int32_t>(rule->major), 0));
    if (rule->minor >= 0) skip_unless(JumpImm(BPF_JNE, BPF_REG_5, static_cast<int32_t>(rule->minor), 0));
    block.push_back(Return(rule->allow ? 1 : 0));
    block.push_back(Exit());
    for (size_t at : exits) block[at].off = static_cast<int16_t>(block.size() - at - 1);
    program.insert(program.end(), block.begin(), block.end());
    // A rule that matches every request decides alone: what would follow is
    // unreachable, which the verifier refuses.
    if (exits.empty()) return program;
  }
  program.push_back(Return(0));  // nothing matched: denied
  program.push_back(Exit());
  return program;
}

std::string AttachDeviceBpfProgram(const std::string& cgroup_dir, const std::vector<bpf_insn>& program) {
  static constexpr char kLicense[] = "Apache-2.0";
  std::vector<char> log(64 * 1024);
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  load.log_buf = reinterpret_cast<uint64_t>(log.data());
  load.log_size = static_cast<uint32_t>(log.size());
  load.log_level = 1;
  UniqueFd prog(static_cast<int>(syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load)));
  if (!prog) {
    int error = errno;
    std::string verifier(log.data(), strnlen(log.data(), log.size()));
    return std::string("load the device BPF program (BPF_PROG_TYPE_CGROUP_DEVICE): ") + std::strerror(error) +
           (verifier.empty() ? "" : "; verifier: " + verifier.substr(0, 2000));
  }
  UniqueFd cgroup(open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) return "open " + cgroup_dir + ": " + std::strerror(errno);
  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) != 0)
    return "attach the device BPF program to " + cgroup_dir + ": " + std::strerror(errno);
  return "";
}

}  // namespace uvmshim::agent
