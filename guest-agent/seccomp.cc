#include "guest-agent/seccomp.h"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

#include "guest-agent/oci_spec.h"
#include "guest-agent/seccomp_enosys.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

[[noreturn]] void Fail(const std::string& where, const std::string& what) { throw SpecError(where + " " + what); }

const json* Member(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string String(const json& value, const std::string& where) {
  if (!value.is_string()) Fail(where, "must be a string");
  return value.get<std::string>();
}

uint64_t Unsigned(const json& value, const std::string& where, uint64_t max) {
  if (!value.is_number_integer()) Fail(where, "must be an integer");
  if (!value.is_number_unsigned() && value.get<int64_t>() < 0) Fail(where, "must not be negative");
  uint64_t v = value.get<uint64_t>();
  if (v > max) Fail(where, "is out of range (at most " + std::to_string(max) + ")");
  return v;
}

// SCMP_ACT_ERRNO/TRACE carry 16 bits of data.
constexpr uint64_t kMaxActionData = 0xffff;

// An action name with its errnoRet (absent: EPERM, as runc) to libseccomp's value.
uint32_t ParseAction(const json& value, const json* errno_ret, const std::string& where,
                     const std::string& errno_where) {
  std::string name = String(value, where);
  auto data = [&]() -> uint32_t {
    return errno_ret ? static_cast<uint32_t>(Unsigned(*errno_ret, errno_where, kMaxActionData)) : EPERM;
  };
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(data());
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(data());
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY")
    Fail(where, "SCMP_ACT_NOTIFY is not supported (no seccomp listener: linux.seccomp.listenerPath)");
  Fail(where, "is an unknown action \"" + name + "\"");
}

uint32_t ParseArchitecture(const json& value, const std::string& where) {
  std::string name = String(value, where);
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  if (name.rfind(kPrefix, 0) != 0) Fail(where, "is an unknown architecture \"" + name + "\"");
  std::string short_name = name.substr(kPrefix.size());
  for (char& c : short_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint32_t token = seccomp_arch_resolve_name(short_name.c_str());
  if (token == 0) Fail(where, "is an unknown architecture \"" + name + "\"");
  return token;
}

int ParseOperator(const json& value, const std::string& where) {
  static constexpr std::array<std::pair<std::string_view, int>, 7> kOps = {{
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  }};
  std::string name = String(value, where);
  for (const auto& [known, op] : kOps)
    if (known == name) return op;
  Fail(where, "is an unknown operator \"" + name + "\"");
}

unsigned int ParseFlag(const json& value, const std::string& where) {
  std::string name = String(value, where);
  if (name == "SECCOMP_FILTER_FLAG_TSYNC") return SECCOMP_FILTER_FLAG_TSYNC;
  if (name == "SECCOMP_FILTER_FLAG_LOG") return SECCOMP_FILTER_FLAG_LOG;
  if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  Fail(where, "is an unknown or unsupported flag \"" + name + "\"");
}

// libseccomp keeps its context in a handle that must be released.
struct FilterContext {
  scmp_filter_ctx ctx;
  explicit FilterContext(uint32_t default_action) : ctx(seccomp_init(default_action)) {}
  ~FilterContext() {
    if (ctx) seccomp_release(ctx);
  }
  FilterContext(const FilterContext&) = delete;
  FilterContext& operator=(const FilterContext&) = delete;
};

}  // namespace

SeccompProfile ParseSeccompProfile(const json& value, const std::string& where) {
  if (!value.is_object()) Fail(where, "must be an object");
  SeccompProfile profile;
  const json* default_action = Member(value, "defaultAction");
  if (!default_action) Fail(where + ".defaultAction", "is required");
  profile.default_action = ParseAction(*default_action, Member(value, "defaultErrnoRet"),
                                       where + ".defaultAction", where + ".defaultErrnoRet");
  if (const json* listener = Member(value, "listenerPath"); listener && !String(*listener, where + ".listenerPath").empty())
    Fail(where + ".listenerPath", "is not supported (no seccomp notify listener)");
  if (const json* arches = Member(value, "architectures")) {
    if (!arches->is_array()) Fail(where + ".architectures", "must be an array");
    for (size_t i = 0; i < arches->size(); ++i)
      profile.architectures.push_back(
          ParseArchitecture((*arches)[i], where + ".architectures[" + std::to_string(i) + "]"));
  }
  if (const json* flags = Member(value, "flags")) {
    if (!flags->is_array()) Fail(where + ".flags", "must be an array");
    for (size_t i = 0; i < flags->size(); ++i)
      profile.flags |= ParseFlag((*flags)[i], where + ".flags[" + std::to_string(i) + "]");
  }
  if (const json* syscalls = Member(value, "syscalls")) {
    if (!syscalls->is_array()) Fail(where + ".syscalls", "must be an array");
    for (size_t i = 0; i < syscalls->size(); ++i) {
      const json& item = (*syscalls)[i];
      std::string w = where + ".syscalls[" + std::to_string(i) + "]";
      if (!item.is_object()) Fail(w, "must be an object");
      SeccompRule rule;
      const json* names = Member(item, "names");
      if (!names || !names->is_array() || names->empty()) Fail(w + ".names", "must be a non-empty array of strings");
      for (size_t n = 0; n < names->size(); ++n) {
        rule.names.push_back(String((*names)[n], w + ".names[" + std::to_string(n) + "]"));
        if (rule.names.back().empty()) Fail(w + ".names[" + std::to_string(n) + "]", "is empty");
      }
      const json* action = Member(item, "action");
      if (!action) Fail(w + ".action", "is required");
      rule.action = ParseAction(*action, Member(item, "errnoRet"), w + ".action", w + ".errnoRet");
      if (const json* args = Member(item, "args")) {
        if (!args->is_array()) Fail(w + ".args", "must be an array");
        for (size_t a = 0; a < args->size(); ++a) {
          const json& arg = (*args)[a];
          std::string wa = w + ".args[" + std::to_string(a) + "]";
          if (!arg.is_object()) Fail(wa, "must be an object");
          SeccompArg parsed;
          const json* index = Member(arg, "index");
          if (!index) Fail(wa + ".index", "is required");
          parsed.index = static_cast<uint32_t>(Unsigned(*index, wa + ".index", 5));
          if (const json* v = Member(arg, "value")) parsed.value = Unsigned(*v, wa + ".value", UINT64_MAX);
          if (const json* v = Member(arg, "valueTwo")) parsed.value_two = Unsigned(*v, wa + ".valueTwo", UINT64_MAX);
          const json* op = Member(arg, "op");
          if (!op) Fail(wa + ".op", "is required");
          parsed.op = ParseOperator(*op, wa + ".op");
          rule.args.push_back(parsed);
        }
      }
      profile.rules.push_back(std::move(rule));
    }
  }
  return profile;
}

std::shared_ptr<const SeccompProgram> CompileSeccompProfile(const SeccompProfile& profile) {
  const std::string where = "spec: linux.seccomp";
  FilterContext filter(profile.default_action);
  if (!filter.ctx) Fail(where + ".defaultAction", "is refused by libseccomp");
  // The agent sets no_new_privs itself when the spec asks for it.
  if (int rc = seccomp_attr_set(filter.ctx, SCMP_FLTATR_CTL_NNP, 0); rc != 0)
    Fail(where, std::string("libseccomp: clear NNP: ") + std::strerror(-rc));
  for (size_t i = 0; i < profile.architectures.size(); ++i) {
    int rc = seccomp_arch_add(filter.ctx, profile.architectures[i]);
    if (rc != 0 && rc != -EEXIST)
      Fail(where + ".architectures[" + std::to_string(i) + "]", std::string("is refused: ") + std::strerror(-rc));
  }
  for (size_t i = 0; i < profile.rules.size(); ++i) {
    const SeccompRule& rule = profile.rules[i];
    // libseccomp refuses a rule whose action is the default one; it would
    // change nothing anyway (runc skips these too).
    if (rule.action == profile.default_action) continue;
    std::vector<scmp_arg_cmp> conditions;
    std::array<int, 6> per_index{};
    bool repeated_index = false;
    for (const auto& arg : rule.args) {
      conditions.push_back(scmp_arg_cmp{arg.index, static_cast<scmp_compare>(arg.op), arg.value, arg.value_two});
      repeated_index |= ++per_index[arg.index] > 1;
    }
    for (size_t n = 0; n < rule.names.size(); ++n) {
      int number = seccomp_syscall_resolve_name(rule.names[n].c_str());
      if (number == __NR_SCMP_ERROR) continue;  // unknown to this libseccomp: skipped, as runc
      auto add = [&](unsigned count, const scmp_arg_cmp* args) {
        int rc = seccomp_rule_add_array(filter.ctx, rule.action, number, count, args);
        if (rc != 0)
          Fail(where + ".syscalls[" + std::to_string(i) + "]",
               "(\"" + rule.names[n] + "\") is refused by libseccomp: " + std::strerror(-rc));
      };
      // libseccomp cannot AND two conditions on one argument: like runc,
      // such a rule becomes one rule per condition.
      if (repeated_index) {
        for (const auto& condition : conditions) add(1, &condition);
      } else {
        add(static_cast<unsigned>(conditions.size()), conditions.data());
      }
    }
  }
  UniqueFd memfd(static_cast<int>(syscall(SYS_memfd_create, "uvm-agent-seccomp", MFD_CLOEXEC)));
  if (!memfd) Fail(where, std::string("memfd_create: ") + std::strerror(errno));
  if (int rc = seccomp_export_bpf(filter.ctx, memfd.get()); rc != 0)
    Fail(where, std::string("libseccomp: export BPF: ") + std::strerror(-rc));
  off_t size = lseek(memfd.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
    Fail(where, "libseccomp exported a malformed BPF program");
  auto program = std::make_shared<SeccompProgram>();
  program->instructions.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(memfd.get(), program->instructions.data(), static_cast<size_t>(size), 0) != size)
    Fail(where, std::string("read the exported BPF program: ") + std::strerror(errno));
  std::vector<uint32_t> architectures = profile.architectures;
  architectures.insert(architectures.begin(), seccomp_arch_native());
  auto stub = EnosysStubFor(profile, architectures);  // runc 1.1's ENOSYS for newer syscalls
  program->instructions.insert(program->instructions.begin(), stub.begin(), stub.end());
  if (program->instructions.size() > BPF_MAXINSNS)
    Fail(where, "compiles to " + std::to_string(program->instructions.size()) + " BPF instructions (the kernel takes " +
                    std::to_string(BPF_MAXINSNS) + ")");
  program->flags = profile.flags;
  return program;
}

int LoadSeccompProgram(const SeccompProgram& program) noexcept {
  sock_fprog prog{static_cast<unsigned short>(program.instructions.size()),
                  const_cast<sock_filter*>(program.instructions.data())};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, program.flags, &prog) != 0) return errno == 0 ? EINVAL : errno;
  return 0;
}

std::string SeccompProgramToHex(const SeccompProgram& program) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* bytes = reinterpret_cast<const unsigned char*>(program.instructions.data());
  size_t size = program.instructions.size() * sizeof(sock_filter);
  std::string hex;
  hex.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 15]);
  }
  return hex;
}

std::shared_ptr<const SeccompProgram> SeccompProgramFromHex(const std::string& hex, unsigned int flags) {
  if (hex.size() % (2 * sizeof(sock_filter)) != 0) throw SpecError("seccomp program: bad length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw SpecError("seccomp program: bad hex digit");
  };
  auto program = std::make_shared<SeccompProgram>();
  program->instructions.resize(hex.size() / 2 / sizeof(sock_filter));
  auto* bytes = reinterpret_cast<unsigned char*>(program->instructions.data());
  for (size_t i = 0; i < hex.size() / 2; ++i)
    bytes[i] = static_cast<unsigned char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  program->flags = flags;
  return program;
}

}  // namespace uvmshim::agent
