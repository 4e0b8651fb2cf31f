// linux.seccomp: parsing (errors name the field), compiling with libseccomp,
// and loading the program in a forked child, where its effect is observed.
#include "guest-agent/seccomp.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "guest-agent/oci_spec.h"

namespace uvmshim::agent {
namespace {

using json = nlohmann::json;

SeccompProfile Parse(const json& profile) { return ParseSeccompProfile(profile, "spec: linux.seccomp"); }

std::string ParseError(const json& profile) {
  try {
    Parse(profile);
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(no error)";
}

json Allow() { return {{"defaultAction", "SCMP_ACT_ALLOW"}}; }

TEST(SeccompParse, ErrorsNameTheField) {
  EXPECT_EQ(ParseError(json::object()), "spec: linux.seccomp.defaultAction is required");
  EXPECT_EQ(ParseError({{"defaultAction", "SCMP_ACT_NOPE"}}),
            "spec: linux.seccomp.defaultAction is an unknown action \"SCMP_ACT_NOPE\"");
  json p = Allow();
  p["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_PDP11"};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.architectures[1] is an unknown architecture \"SCMP_ARCH_PDP11\"");
  p = Allow();
  p["flags"] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.flags[1] is an unknown or unsupported flag \"SECCOMP_FILTER_FLAG_BOGUS\"");
  p = Allow();
  p["syscalls"] = {{{"names", {"getpid"}}, {"action", "SCMP_ACT_ERRNO"}, {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_SIMILAR"}}}}}};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.syscalls[0].args[0].op is an unknown operator \"SCMP_CMP_SIMILAR\"");
  p["syscalls"][0]["args"][0] = {{"index", 6}, {"op", "SCMP_CMP_EQ"}};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.syscalls[0].args[0].index is out of range (at most 5)");
  p["syscalls"][0] = {{"names", json::array()}, {"action", "SCMP_ACT_ERRNO"}};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.syscalls[0].names must be a non-empty array of strings");
  p["syscalls"][0] = {{"names", {"getpid"}}, {"action", "SCMP_ACT_NOTIFY"}};
  EXPECT_NE(ParseError(p).find("spec: linux.seccomp.syscalls[0].action SCMP_ACT_NOTIFY is not supported"), std::string::npos);
  p["syscalls"][0] = {{"names", {"getpid"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 70000}};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.syscalls[0].errnoRet is out of range (at most 65535)");
  p["syscalls"][0] = {{"names", {"getpid"}}};
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.syscalls[0].action is required");
  p = Allow();
  p["listenerPath"] = "/run/seccomp.sock";
  EXPECT_EQ(ParseError(p), "spec: linux.seccomp.listenerPath is not supported (no seccomp notify listener)");
}

TEST(SeccompParse, InTheSpec) {
  json spec = {{"process", {{"args", {"true"}}, {"cwd", "/"}}},
               {"linux", {{"seccomp", {{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", 38}}}}}};
  OciSpec parsed = ParseOciSpec(spec.dump());
  ASSERT_TRUE(parsed.seccomp);
  spec["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_BOGUS";
  try {
    ParseOciSpec(spec.dump());
    FAIL() << "no error";
  } catch (const SpecError& e) {
    EXPECT_STREQ(e.what(), "spec: linux.seccomp.defaultAction is an unknown action \"SCMP_ACT_BOGUS\"");
  }
}

// Runs `body` in a forked child after loading `profile` (with no_new_privs,
// so no privilege is needed); returns the child's wait status. The body's
// return value is the exit code.
int RunFiltered(const json& profile, int (*body)()) {
  auto program = CompileSeccompProfile(Parse(profile));
  pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(100);
    if (LoadSeccompProgram(*program) != 0) _exit(101);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(SeccompCompile, ErrnoActionsAndArguments) {
  json p = Allow();
  p["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  p["syscalls"] = {
      {{"names", {"getppid", "no_such_syscall_anywhere"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}},
      {{"names", {"dup"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 43},
       {"args", {{{"index", 0}, {"value", 999}, {"op", "SCMP_CMP_EQ"}}}}},
      {{"names", {"dup2"}}, {"action", "SCMP_ACT_ERRNO"},  // EPERM by default
       {"args", {{{"index", 1}, {"value", 0xf0}, {"valueTwo", 0x50}, {"op", "SCMP_CMP_MASKED_EQ"}}}}},
      {{"names", {"getpid"}}, {"action", "SCMP_ACT_ALLOW"}},  // = default: skipped
  };
  int status = RunFiltered(p, [] {
    if (syscall(SYS_getppid) != -1 || errno != 42) return 1;
    if (dup(999) != -1 || errno != 43) return 2;
    if (dup(998) != -1 || errno != EBADF) return 3;  // the condition does not hold: allowed
    if (dup2(998, 0x55) != -1 || errno != EPERM) return 4;  // (0x55 & 0xf0) == 0x50
    if (dup2(998, 0x65) != -1 || errno != EBADF) return 5;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompCompile, DefaultErrnoRet) {
  json p = {{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", 38}};
  p["syscalls"] = {{{"names", {"exit", "exit_group", "write"}}, {"action", "SCMP_ACT_ALLOW"}}};
  int status = RunFiltered(p, [] { return syscall(SYS_getppid) == -1 && errno == ENOSYS ? 0 : 1; });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// runc 1.1: with an errno default action, a syscall numbered above every one
// the profile names gets ENOSYS (a kernel without it), one within gets the default.
TEST(SeccompCompile, NewerSyscallsGetEnosys) {
  json p = {{"defaultAction", "SCMP_ACT_ERRNO"}};  // EPERM
  p["architectures"] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  p["syscalls"] = {{{"names", {"exit", "exit_group", "write", "getpid", "close"}}, {"action", "SCMP_ACT_ALLOW"}},
                   {{"names", {"openat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 13}}};
  int status = RunFiltered(p, [] {
    if (syscall(SYS_getppid) != -1 || errno != EPERM) return 1;   // 110 < openat's 257: the default
    if (syscall(SYS_openat, -1, "x", 0) != -1 || errno != 13) return 2;
    if (syscall(SYS_close_range, ~0U, ~0U, 0) != -1 || errno != ENOSYS) return 3;  // 436 > 257
    if (syscall(435 /* clone3 */, nullptr, 0) != -1 || errno != ENOSYS) return 4;
    if (syscall(SYS_getpid) <= 0) return 5;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // An allow default is left as it is: nothing is denied, nothing is stubbed.
  json allow = Allow();
  allow["syscalls"] = {{{"names", {"getppid"}}, {"action", "SCMP_ACT_ERRNO"}}};
  status = RunFiltered(allow, [] { return syscall(SYS_close_range, ~0U, ~0U, 0) == 0 ? 0 : 1; });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompCompile, KillAndTrapEndWithSigsys) {
  for (const char* action : {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"}) {
    json p = Allow();
    p["syscalls"] = {{{"names", {"getppid"}}, {"action", action}}};
    int status = RunFiltered(p, [] { return static_cast<int>(syscall(SYS_getppid) * 0 + 7); });
    ASSERT_TRUE(WIFSIGNALED(status)) << action << " status " << status;
    EXPECT_EQ(WTERMSIG(status), SIGSYS) << action;
  }
}

TEST(SeccompCompile, LogTraceAndFlags) {
  json p = Allow();
  p["flags"] = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"};
  // LOG allows (and logs); TRACE without a tracer fails the call with ENOSYS.
  p["syscalls"] = {{{"names", {"getppid"}}, {"action", "SCMP_ACT_LOG"}},
                   {{"names", {"getpgrp"}}, {"action", "SCMP_ACT_TRACE"}, {"errnoRet", 5}}};
  int status = RunFiltered(p, [] {
    if (syscall(SYS_getppid) <= 0) return 1;
    if (syscall(SYS_getpgrp) != -1 || errno != ENOSYS) return 2;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(SeccompCompile, HexRoundTrip) {
  json p = Allow();
  p["syscalls"] = {{{"names", {"getppid"}}, {"action", "SCMP_ACT_ERRNO"}}};
  auto program = CompileSeccompProfile(Parse(p));
  ASSERT_GT(program->instructions.size(), 3u);
  auto back = SeccompProgramFromHex(SeccompProgramToHex(*program), program->flags);
  ASSERT_EQ(back->instructions.size(), program->instructions.size());
  EXPECT_EQ(memcmp(back->instructions.data(), program->instructions.data(),
                   program->instructions.size() * sizeof(sock_filter)), 0);
  EXPECT_THROW(SeccompProgramFromHex("abc", 0), SpecError);
}

}  // namespace
}  // namespace uvmshim::agent
