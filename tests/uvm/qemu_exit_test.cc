#include "uvm/qemu/vmm_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

namespace uvmshim::uvm {
namespace {

// Wait statuses as waitid/waitpid report them.
constexpr int Exited(int code) { return (code & 0xff) << 8; }
constexpr int Signaled(int signal) { return signal & 0x7f; }

QemuExitFacts Facts(int status, bool agent_ready, std::string shutdown_reason = "") {
  QemuExitFacts facts;
  facts.status = status;
  facts.pid = 42;
  facts.agent_ready = agent_ready;
  facts.shutdown_reason = std::move(shutdown_reason);
  facts.qemu_log_tail = "qemu: bad option\n";
  facts.console_tail = "Kernel panic\n";
  return facts;
}

TEST(QemuExit, StatusEncodingMatchesTheHost) {
  EXPECT_TRUE(WIFEXITED(Exited(3)));
  EXPECT_EQ(WEXITSTATUS(Exited(3)), 3);
  EXPECT_TRUE(WIFSIGNALED(Signaled(SIGKILL)));
}

TEST(QemuExit, WhatWeAskedForWins) {
  auto facts = Facts(Signaled(SIGKILL), true);
  facts.requested = ExitInfo{ExitReason::kTerminated, "terminated on request"};
  const ExitInfo info = ClassifyQemuExit(facts);
  EXPECT_EQ(info.reason, ExitReason::kTerminated);
  EXPECT_EQ(info.detail, "terminated on request");
}

TEST(QemuExit, PowerOffAfterTheAgentAnsweredIsAShutdown) {
  const ExitInfo info = ClassifyQemuExit(Facts(Exited(0), true, "guest-shutdown"));
  EXPECT_EQ(info.reason, ExitReason::kShutdown);
  EXPECT_EQ(info.detail, "the guest powered off (guest-shutdown)");
}

TEST(QemuExit, AnythingBeforeTheAgentAnsweredIsABootFailure) {
  EXPECT_EQ(ClassifyQemuExit(Facts(Exited(0), false)).reason, ExitReason::kBootFailed);
  EXPECT_EQ(ClassifyQemuExit(Facts(Signaled(SIGKILL), false)).reason, ExitReason::kBootFailed);
  const ExitInfo info = ClassifyQemuExit(Facts(Exited(1), false));
  EXPECT_EQ(info.reason, ExitReason::kBootFailed);
  EXPECT_NE(info.detail.find("QEMU exited with status 1: qemu: bad option"), std::string::npos) << info.detail;
  EXPECT_NE(info.detail.find("last console lines:\nKernel panic"), std::string::npos) << info.detail;
}

TEST(QemuExit, AGuestResetOrAKilledQemuIsACrash) {
  const ExitInfo reset = ClassifyQemuExit(Facts(Exited(0), true, "guest-reset"));
  EXPECT_EQ(reset.reason, ExitReason::kCrashed);
  EXPECT_NE(reset.detail.find("the guest reset itself (guest-reset"), std::string::npos) << reset.detail;
  const ExitInfo killed = ClassifyQemuExit(Facts(Signaled(SIGKILL), true));
  EXPECT_EQ(killed.reason, ExitReason::kCrashed);
  EXPECT_NE(killed.detail.find("QEMU (pid 42) was killed by SIGKILL (9)"), std::string::npos) << killed.detail;
}

TEST(QemuExit, NoStatusIsACrash) {
  auto facts = Facts(0, true);
  facts.wait_errno = ECHILD;
  EXPECT_EQ(ClassifyQemuExit(facts).reason, ExitReason::kCrashed);
}

TEST(Virtiofsd, ConfinedToTheShare) {
  const auto args = VirtiofsdArgs({"/usr/lib/qemu/virtiofsd", "/s/virtiofs.sock", "/state/share", "/state/v.log"});
  EXPECT_EQ(args, (std::vector<std::string>{"--socket-path=/s/virtiofs.sock", "-o", "source=/state/share", "-o",
                                            "cache=auto", "-o", "sandbox=namespace", "-o", "no_xattr", "-o",
                                            "no_posix_acl", "-o", "no_security_label"}));
}

}  // namespace
}  // namespace uvmshim::uvm
