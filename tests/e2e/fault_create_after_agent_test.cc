// A create that fails after the agent already created the container (issue #12): the shim's last
// step of Create opens the process's stdio, after the agent's CreateContainer. A log URI naming a
// file in a directory that does not exist makes exactly that step fail, with no fault injection:
// ctr passes `file://PATH` to the shim untouched. The create must fail promptly with an error
// naming the path, the agent's container must be deleted, and nothing may be left (processes,
// mounts, sockets, state, bundle); the next create works. Once hung in ~Task.
#include <gtest/gtest.h>

#include <chrono>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

// The CRI annotations of a pod's sandbox or app container (the pod's shim serves both).
std::vector<std::string> PodFlags(const std::string& type, const std::string& sandbox_id) {
  return {"--annotation", "io.kubernetes.cri.container-type=" + type, "--annotation",
          "io.kubernetes.cri.sandbox-id=" + sandbox_id};
}

class CreateFailsAfterAgent : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
  }
  void TearDown() override { StopContainerd(); }
};

TEST_P(CreateFailsAfterAgent, UnopenableLogFileFailsPromptlyAndLeavesNothing) {
  const RuntimeCase& rc = GetParam();
  ASSERT_NO_THROW(StartContainerd());
  const auto missing = env().dir() / "no-such-dir" / "task.log";
  const std::string id = "badlog";
  const auto began = std::chrono::steady_clock::now();
  auto r = CtrRun(rc, {"--rm", "--log-uri", "file://" + missing.string()}, id, {"echo", "never"},
                  CommandOptions().WithTimeout(rc.op_timeout()));
  const auto took = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - began);
  EXPECT_FALSE(r.timed_out) << "the create hung: " << r.Describe() << env().LogTail();
  EXPECT_NE(r.exit_code, 0) << "the create should have failed: " << r.Describe();
  EXPECT_NE((r.err + r.out).find(missing.string()), std::string::npos)
      << "the error does not name the log file: " << r.Describe() << env().LogTail();
  // Whatever took a while here is the sandbox's boot, not a wait for a timeout.
  EXPECT_LT(took, rc.op_timeout()) << r.Describe();
  env().Ctr({"container", "rm", id});
  ExpectNothingLeftOf(id);

  // The next create in the same containerd works and prints its output.
  auto good = CtrRun(rc, {"--rm"}, "after", {"echo", "ok"});
  EXPECT_EQ(good.out, "ok\n") << good.Describe() << env().LogTail();
  ExpectNothingLeftOf("after");
}

// The same failure for an app container of a pod: the pod's shim and sandbox stay, so the agent's
// container must really be deleted (the sandbox's end does not clean it up). A second create with
// the same id succeeds only if the agent forgot the first. In a hyperv pod the re-create comes
// ~0.3 s after the failed create's share entry was released: with one entry name per id it failed
// 1 in 2 ("move rootfs /run/share/app/rootfs to /.container-root: Invalid argument", the guest's
// cached dentry of the removed entry revalidated and its mounts detached); every create now gets
// an entry name of its own (host-shim/sandbox_share.h).
class CreateFailsAfterAgentInPod : public CreateFailsAfterAgent {};

TEST_P(CreateFailsAfterAgentInPod, PodAppContainerFailsPromptlyAndTheAgentForgetsIt) {
  const RuntimeCase& rc = GetParam();
  ASSERT_NO_THROW(StartContainerd());
  const std::string pod = "pod";
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc, pod, {"sleep", "100000"}, PodFlags("sandbox", pod)));
  const auto missing = env().dir() / "no-such-dir" / "app.log";
  auto flags = PodFlags("container", pod);
  flags.insert(flags.begin(), {"--rm", "--log-uri", "file://" + missing.string()});
  auto r = CtrRun(rc, flags, "app", {"echo", "never"}, CommandOptions().WithTimeout(rc.op_timeout()));
  EXPECT_FALSE(r.timed_out) << "the create hung: " << r.Describe() << env().LogTail();
  EXPECT_NE(r.exit_code, 0) << "the create should have failed: " << r.Describe();
  EXPECT_NE((r.err + r.out).find(missing.string()), std::string::npos)
      << "the error does not name the log file: " << r.Describe() << env().LogTail();
  env().Ctr({"container", "rm", "app"});
  EXPECT_EQ(TaskStatus(pod), "RUNNING") << "the pod's sandbox task went down with its app's create";

  auto good_flags = PodFlags("container", pod);
  good_flags.insert(good_flags.begin(), "--rm");
  auto good = CtrRun(rc, good_flags, "app", {"echo", "ok"});
  EXPECT_EQ(good.out, "ok\n") << "a create with the failed one's id: " << good.Describe() << env().LogTail();

  KillAndRemove(rc, pod);
  ExpectNothingLeftOf("app");
  ExpectNothingLeftOf(pod);
}

INSTANTIATE_TEST_SUITE_P(Uvm, CreateFailsAfterAgent,
                         ::testing::Values(RuntimeCase{"uvm_process_annotation", kUvmRuntime, Isolation::kProcess,
                                                       ModeSelector::kAnnotation},
                                           RuntimeCase{"uvm_hyperv_annotation", kUvmRuntime, Isolation::kHyperv,
                                                       ModeSelector::kAnnotation}),
                         [](const auto& param) { return param.param.name; });
INSTANTIATE_TEST_SUITE_P(Uvm, CreateFailsAfterAgentInPod,
                         ::testing::Values(RuntimeCase{"uvm_process_annotation", kUvmRuntime, Isolation::kProcess,
                                                       ModeSelector::kAnnotation},
                                           RuntimeCase{"uvm_hyperv_annotation", kUvmRuntime, Isolation::kHyperv,
                                                       ModeSelector::kAnnotation}),
                         [](const auto& param) { return param.param.name; });

}  // namespace
}  // namespace uvmshim::e2e
