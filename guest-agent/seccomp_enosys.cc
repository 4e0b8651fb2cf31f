#include "guest-agent/seccomp_enosys.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <optional>

#include "guest-agent/seccomp.h"

namespace uvmshim::agent {
namespace {

constexpr uint32_t kX32SyscallBit = 0x40000000;  // x32 calls share x86_64's audit arch

// The highest syscall number the profile names on `arch`, if any.
std::optional<uint32_t> HighestNamed(const SeccompProfile& profile, uint32_t arch) {
  std::optional<uint32_t> highest;
  for (const auto& rule : profile.rules)
    for (const auto& name : rule.names) {
      const int number = seccomp_syscall_resolve_name_arch(arch, name.c_str());
      if (number < 0) continue;  // unknown there (or a pseudo number for a multiplexed call)
      if (arch == SCMP_ARCH_X86_64 && (static_cast<uint32_t>(number) & kX32SyscallBit)) continue;
      highest = std::max(highest.value_or(0), static_cast<uint32_t>(number));
    }
  return highest;
}

sock_filter Statement(uint16_t code, uint32_t k) { return sock_filter{code, 0, 0, k}; }
sock_filter Jump(uint16_t code, uint32_t k, std::size_t jt, std::size_t jf) {
  return sock_filter{code, static_cast<uint8_t>(jt), static_cast<uint8_t>(jf), k};
}

}  // namespace

std::vector<sock_filter> EnosysStubFor(const SeccompProfile& profile, const std::vector<uint32_t>& architectures) {
  if ((profile.default_action & SECCOMP_RET_ACTION_FULL) != SCMP_ACT_ERRNO(0)) return {};
  struct Limit {
    uint32_t arch;
    uint32_t highest;
  };
  std::vector<Limit> limits;
  for (uint32_t arch : architectures) {
    if (arch == SCMP_ARCH_X32) continue;  // not an audit arch of its own: handled under x86_64
    if (std::any_of(limits.begin(), limits.end(), [&](const Limit& l) { return l.arch == arch; })) continue;
    if (auto highest = HighestNamed(profile, arch)) limits.push_back({arch, *highest});
  }
  if (limits.empty() || limits.size() > 32) return {};

  // Layout (jumps are forward offsets from the next instruction):
  //   ld arch; per limit: jeq arch -> its check; ja program
  //   per limit: ld nr; [x86_64: jset x32 bit -> program]; jgt highest -> enosys; ja program
  //   enosys: ret errno(ENOSYS)
  //   program: (libseccomp's, which loads what it needs itself)
  std::vector<std::size_t> check_size;
  for (const auto& l : limits) check_size.push_back(l.arch == SCMP_ARCH_X86_64 ? 4 : 3);
  const std::size_t dispatch = 1 + limits.size() + 1;
  std::size_t checks = 0;
  for (std::size_t s : check_size) checks += s;
  const std::size_t enosys = dispatch + checks;
  const std::size_t program = enosys + 1;

  std::vector<sock_filter> stub;
  stub.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  std::size_t check_at = dispatch;
  for (std::size_t i = 0; i < limits.size(); ++i) {
    const std::size_t here = stub.size();
    stub.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, limits[i].arch, check_at - (here + 1), 0));
    check_at += check_size[i];
  }
  stub.push_back(Statement(BPF_JMP | BPF_JA, static_cast<uint32_t>(program - (stub.size() + 1))));
  for (const auto& l : limits) {
    stub.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    if (l.arch == SCMP_ARCH_X86_64) {
      const std::size_t here = stub.size();
      stub.push_back(Jump(BPF_JMP | BPF_JSET | BPF_K, kX32SyscallBit, program - (here + 1), 0));
    }
    const std::size_t here = stub.size();
    stub.push_back(Jump(BPF_JMP | BPF_JGT | BPF_K, l.highest, enosys - (here + 1), 0));
    stub.push_back(Statement(BPF_JMP | BPF_JA, static_cast<uint32_t>(program - (stub.size() + 1))));
  }
  stub.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  return stub;
}

}  // namespace uvmshim::agent
