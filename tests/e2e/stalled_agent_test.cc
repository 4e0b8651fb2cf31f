// A sandbox whose agent stops answering (QEMU or the host agent SIGSTOPped, as a
// stalled VM or a frozen agent would): the shim's other RPCs must answer within
// their deadlines, and `ctr task delete -f` must finish, leaving nothing behind
// (the VM or host agent killed, virtiofsd gone, state dirs removed).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

// Short agent-call deadline so the test does not wait 30 s per stalled call.
constexpr int kCallTimeoutSeconds = 5;
// A call must fail within its deadline plus containerd and ctr overhead (TCG, 2 loaded cores).
constexpr auto kAnswerBound = std::chrono::seconds(kCallTimeoutSeconds + 25);

class StalledAgent : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(StartContainerd());
  }
  void TearDown() override {
    // A failed test may leave the host stopped: let containerd's teardown kill it.
    if (stopped_ > 0) ::kill(stopped_, SIGCONT);
    StopContainerd();
  }
  const RuntimeCase& rc() const { return GetParam(); }

  std::filesystem::path WriteConfig() {
    auto file = env().dir() / "stalled.toml";
    std::ofstream(file) << "isolation = \"" << rc().mode() << "\"\n[agent]\ncall_timeout_seconds = "
                        << kCallTimeoutSeconds << "\n";
    return file;
  }

  // QEMU (hyperv) or the host agent (process) below the task's shim.
  std::optional<pid_t> AgentHostPid(pid_t shim) {
    for (pid_t pid : DescendantsOf(shim)) {
      auto exe = ProcessExeName(pid);
      if (!exe) continue;
      if (rc().is_hyperv() ? exe->rfind("qemu-system", 0) == 0 : *exe == "uvm-agent") return pid;
    }
    return std::nullopt;
  }

  pid_t stopped_ = -1;
};

TEST_P(StalledAgent, PsStateAndForcedDeleteFinishInBoundedTimeLeavingNothing) {
  const std::string id = "stalled";
  auto run = env().Ctr({"run", "-d", "--runtime", kUvmRuntime, "--runtime-config-path", WriteConfig().string(),
                        env().image_ref(), id, "sleep", "1000"},
                       CommandOptions().WithTimeout(rc().op_timeout()));
  ASSERT_TRUE(run.ok()) << run.Describe() << env().LogTail();
  ASSERT_TRUE(WaitForStatus(id, "RUNNING", rc().op_timeout())) << env().LogTail();
  auto shim = FindShimPid(env().address(), id);
  ASSERT_TRUE(shim.has_value());
  auto host = AgentHostPid(*shim);
  ASSERT_TRUE(host.has_value()) << "no agent host process below shim " << *shim;
  std::vector<pid_t> before = DescendantsOf(*shim);

  ASSERT_EQ(::kill(*host, SIGSTOP), 0);
  stopped_ = *host;

  // Pids needs the agent: it fails, within the deadline, naming the stall.
  auto ps = env().Ctr({"task", "ps", id}, CommandOptions().WithTimeout(kAnswerBound + 30s));
  EXPECT_FALSE(ps.timed_out) << ps.Describe();
  EXPECT_NE(ps.exit_code, 0) << ps.Describe();
  EXPECT_LT(ps.elapsed, kAnswerBound) << ps.Describe();
  EXPECT_NE((ps.err + ps.out).find("did not answer in time"), std::string::npos) << ps.Describe();

  // State does not need the agent: it answers at once.
  auto ls = env().Ctr({"task", "ls"}, CommandOptions().WithTimeout(30s));
  EXPECT_TRUE(ls.ok()) << ls.Describe();
  EXPECT_LT(ls.elapsed, 10s) << ls.Describe();
  EXPECT_NE(ls.out.find("RUNNING"), std::string::npos) << ls.out;

  // delete -f = SIGKILL, wait for the exit, delete: the unanswered SIGKILL kills the host.
  auto del = env().Ctr({"task", "delete", "-f", id}, CommandOptions().WithTimeout(kAnswerBound + 60s));
  EXPECT_TRUE(del.ok()) << del.Describe() << env().LogTail();
  EXPECT_LT(del.elapsed, kAnswerBound + 30s) << del.Describe();
  auto crm = env().Ctr({"container", "rm", id}, CommandOptions().WithTimeout(60s));
  EXPECT_TRUE(crm.ok()) << crm.Describe() << env().LogTail();

  EXPECT_TRUE(WaitFor([&] { return !PidAlive(*host); }, 30s)) << "agent host " << *host << " still alive";
  stopped_ = -1;
  for (pid_t pid : before)
    EXPECT_TRUE(WaitFor([&] { return !PidAlive(pid); }, 30s)) << "process " << pid << " outlived its sandbox";
  ExpectNothingLeftOf(id);
  // containerd still runs containers with this runtime.
  auto again = env().Ctr({"run", "--rm", "--runtime", kUvmRuntime, "--runtime-config-path",
                          WriteConfig().string(), env().image_ref(), "afterstall", "echo", "ok"},
                         CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_EQ(again.out, "ok\n") << again.Describe() << env().LogTail();
}

// A plain `ctr task kill -s SIGKILL` on a stalled sandbox ends the task (137) too.
TEST_P(StalledAgent, SigkillEndsTheTaskWithStatus137) {
  const std::string id = "stalledkill";
  BackgroundCommand run(env().CtrArgv({"run", "--rm", "--runtime", kUvmRuntime, "--runtime-config-path",
                                       WriteConfig().string(), env().image_ref(), id, "sleep", "1000"}),
                        env().dir() / "stalledkill.out");
  ASSERT_TRUE(WaitFor([&] { return run.Exited() || TaskStatus(id) == "RUNNING"; }, rc().op_timeout()) &&
              !run.Exited())
      << "task never RUNNING: " << run.Output() << env().LogTail();
  auto shim = FindShimPid(env().address(), id);
  ASSERT_TRUE(shim.has_value());
  auto host = AgentHostPid(*shim);
  ASSERT_TRUE(host.has_value());
  ASSERT_EQ(::kill(*host, SIGSTOP), 0);
  stopped_ = *host;

  auto kill = env().Ctr({"task", "kill", "-s", "SIGKILL", id}, CommandOptions().WithTimeout(kAnswerBound + 30s));
  EXPECT_TRUE(kill.ok()) << kill.Describe() << env().LogTail();
  EXPECT_LT(kill.elapsed, kAnswerBound) << kill.Describe();
  auto code = run.Wait(kAnswerBound + 30s);
  ASSERT_TRUE(code.has_value()) << "ctr run did not return after SIGKILL of a stalled sandbox: " << run.Output()
                                << env().LogTail();
  EXPECT_EQ(*code, 128 + SIGKILL) << run.Output();
  EXPECT_TRUE(WaitFor([&] { return !PidAlive(*host); }, 30s));
  stopped_ = -1;
  ExpectNothingLeftOf(id);
}

std::string CaseName(const ::testing::TestParamInfo<RuntimeCase>& param_info) { return param_info.param.name; }

INSTANTIATE_TEST_SUITE_P(
    Runtimes, StalledAgent,
    ::testing::Values(RuntimeCase{"uvm_process", kUvmRuntime, Isolation::kProcess, ModeSelector::kConfigFile},
                      RuntimeCase{"uvm_hyperv", kUvmRuntime, Isolation::kHyperv, ModeSelector::kConfigFile}),
    CaseName);

}  // namespace
}  // namespace uvmshim::e2e
