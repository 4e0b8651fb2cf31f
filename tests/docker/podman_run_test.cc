// Podman 4.3 (through conmon) with runc (the control) and uvm-runc in process
// and hyperv isolation, selected with --runtime and --runtime-flag.
#include <signal.h>
#include <sys/utsname.h>

#include "docker_fixture.h"

namespace uvmshim::e2e {
namespace {

class PodmanRun : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingFor(GetParam(), kPodman)) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(podman_ = std::make_unique<PodmanEnv>());
  }
  void TearDown() override { podman_.reset(); }
  OciRuntime Runtime() const { return GetParam().is_uvm() ? UvmRuncRuntime(GetParam().isolation) : OciRuntime{}; }
  CommandResult Podman(const std::vector<std::string>& args, CommandOptions options = {}) {
    options.timeout = GetParam().op_timeout();
    return podman_->Podman(args, Runtime(), options);
  }
  CommandResult Run(std::vector<std::string> flags, const std::vector<std::string>& cmd, CommandOptions options = {}) {
    std::vector<std::string> args{"run"};
    args.insert(args.end(), kPodmanRunLimits.begin(), kPodmanRunLimits.end());
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(kPodmanImage);
    args.insert(args.end(), cmd.begin(), cmd.end());
    return Podman(args, std::move(options));
  }

 private:
  std::unique_ptr<PodmanEnv> podman_;
};

TEST_P(PodmanRun, ExitCodeStdinAndKernel) {
  auto r = Run({"--rm"}, {"sh", "-c", "uname -r; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  utsname host{};
  ::uname(&host);
  if (GetParam().is_hyperv())
    EXPECT_NE(Trim(r.out), host.release);
  else
    EXPECT_EQ(Trim(r.out), host.release);
  auto i = Run({"--rm", "-i"}, {"sh", "-c", "cat; echo done"}, CommandOptions().WithStdin("in\n"));
  EXPECT_TRUE(i.ok()) << i.Describe();
  EXPECT_EQ(i.out, "in\ndone\n");
}

TEST_P(PodmanRun, ExecKillAndRemove) {
  auto d = Run({"-d"}, {"sleep", "1000"});
  ASSERT_TRUE(d.ok()) << d.Describe();
  const std::string id = Trim(d.out);
  auto exec = Podman({"exec", id, "sh", "-c", "echo in-exec; exit 3"});
  EXPECT_EQ(exec.exit_code, 3) << exec.Describe();
  EXPECT_EQ(exec.out, "in-exec\n");
  EXPECT_TRUE(Podman({"kill", id}).ok());
  auto wait = Podman({"wait", id});
  EXPECT_EQ(Trim(wait.out), "137") << wait.Describe();
  auto rm = Podman({"rm", id});
  EXPECT_TRUE(rm.ok()) << rm.Describe();
  EXPECT_TRUE(WaitFor([&] {
    for (pid_t pid : AllPids()) {
      auto exe = ProcessExeName(pid).value_or("");
      if (exe == "uvm-runc" || exe == "uvm-agent" || exe.starts_with("qemu-system")) {
        auto args = ProcessArgs(pid);
        for (const auto& a : args)
          if (a.find(id) != std::string::npos) return false;
      }
    }
    return true;
  }, 30s)) << "a monitor, agent or VM of " << id << " is still running";
}

INSTANTIATE_TEST_SUITE_P(Runtimes, PodmanRun, ::testing::ValuesIn(AllEngineCases()), EngineCaseName);

}  // namespace
}  // namespace uvmshim::e2e
