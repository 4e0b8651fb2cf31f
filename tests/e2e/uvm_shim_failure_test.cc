// uvm shim: bad input makes `create` fail with a message that names the problem,
// and containerd stays healthy (a good container runs right after). Skipped until
// containerd-shim-uvm-v1 is built.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

const RuntimeCase kProcessByAnnotation{"uvm_process_annotation", kUvmRuntime, Isolation::kProcess,
                                       ModeSelector::kAnnotation};
const RuntimeCase kHypervByAnnotation{"uvm_hyperv_annotation", kUvmRuntime, Isolation::kHyperv,
                                      ModeSelector::kAnnotation};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class UvmShimCreateFailure : public CtrFixture, public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(kProcessByAnnotation)) GTEST_SKIP() << *why;
  }
  void TearDown() override { StopContainerd(); }

  // The create failed, its message mentions one of `words`, and containerd still works.
  void ExpectFailedCreate(const CommandResult& r, const std::vector<std::string>& words, const std::string& id) {
    EXPECT_NE(r.exit_code, 0) << "create should have failed: " << r.Describe();
    EXPECT_FALSE(r.timed_out) << r.Describe();
    auto message = Lower(r.err + r.out);
    bool named = std::any_of(words.begin(), words.end(),
                             [&](const std::string& w) { return message.find(Lower(w)) != std::string::npos; });
    EXPECT_TRUE(named) << "the error does not name the problem (expected one of: "
                       << Join(words, ", ") << "): " << r.Describe() << env().LogTail();
    env().Ctr({"container", "rm", id});
    ExpectContainerdHealthy();
    ExpectNothingLeftOf(id);
  }

  void ExpectContainerdHealthy() {
    EXPECT_TRUE(env().ContainerdPid().has_value()) << "containerd died" << env().LogTail();
    auto v = env().Ctr({"version"}, CommandOptions().WithTimeout(10s));
    EXPECT_TRUE(v.ok()) << v.Describe();
    auto good = CtrRun(kProcessByAnnotation, {"--rm"}, "healthy", {"echo", "ok"});
    EXPECT_EQ(good.out, "ok\n") << good.Describe() << env().LogTail();
  }
};

TEST_F(UvmShimCreateFailure, InvalidSpecWithoutArgsNamesTheProblem) {
  ASSERT_NO_THROW(StartContainerd());
  // A spec whose process has no args: valid JSON, invalid OCI config for a container.
  // ctr takes only the container id with --config; the rootfs comes from the spec.
  const auto rootfs = env().dir() / "noargs-rootfs";
  auto made = RunCommand({(SourceDir() / "tests/fixtures/make-busybox-rootfs.sh").string(), rootfs.string()});
  ASSERT_TRUE(made.ok()) << made.Describe();
  auto spec = env().dir() / "no-args-spec.json";
  std::ofstream(spec) << R"({"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},)"
                      << R"("args":[],"env":["PATH=/bin"],"cwd":"/"},"root":{"path":")" << rootfs.string()
                      << R"("},"annotations":{"io.uvmshim.isolation":"process"},)"
                      << R"("hostname":"x","linux":{"namespaces":[{"type":"pid"},{"type":"mount"}]}})";
  auto r = env().Ctr({"run", "--rm", "--config", spec.string(), "--runtime", kUvmRuntime, "noargs"},
                     CommandOptions().WithTimeout(60s));
  ExpectFailedCreate(r, {"args"}, "noargs");
}

TEST_F(UvmShimCreateFailure, UnknownIsolationModeNamesTheValue) {
  ASSERT_NO_THROW(StartContainerd());
  auto r = env().Ctr({"run", "--rm", "--runtime", kUvmRuntime, "--annotation",
                      std::string(kIsolationAnnotation) + "=bogusmode", env().image_ref(), "badmode", "true"},
                     CommandOptions().WithTimeout(60s));
  ExpectFailedCreate(r, {"bogusmode"}, "badmode");
}

TEST_F(UvmShimCreateFailure, UnknownRuntimeOptionNamesTheOption) {
  ASSERT_NO_THROW(StartContainerd());
  auto config = env().dir() / "unknown-option.toml";
  std::ofstream(config) << "isolation = \"process\"\nno_such_option = true\n";
  auto r = env().Ctr({"run", "--rm", "--runtime", kUvmRuntime, "--runtime-config-path", config.string(),
                      env().image_ref(), "badopt", "true"},
                     CommandOptions().WithTimeout(60s));
  ExpectFailedCreate(r, {"no_such_option"}, "badopt");
}

TEST_F(UvmShimCreateFailure, UnreadableRuntimeConfigFileNamesThePath) {
  ASSERT_NO_THROW(StartContainerd());
  auto config = env().dir() / "does-not-exist.toml";
  auto r = env().Ctr({"run", "--rm", "--runtime", kUvmRuntime, "--runtime-config-path", config.string(),
                      env().image_ref(), "noconfig", "true"},
                     CommandOptions().WithTimeout(60s));
  ExpectFailedCreate(r, {"does-not-exist.toml"}, "noconfig");
}

TEST_F(UvmShimCreateFailure, MissingBootFilesNameTheFile) {
  // Point the shim (through containerd's environment) at an empty images dir.
  TempDir empty("uvmshim-noboot");
  ASSERT_NO_THROW(StartContainerd({"UVMSHIM_IMAGES=" + empty.path().string()}));
  auto r = CtrRun(kHypervByAnnotation, {"--rm"}, "noboot", {"true"}, CommandOptions().WithTimeout(120s));
  ExpectFailedCreate(r, {"vmlinuz", "initrd", empty.path().string()}, "noboot");
}

}  // namespace
}  // namespace uvmshim::e2e
