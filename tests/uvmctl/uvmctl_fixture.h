// The fixture of every uvmctl test, parametrized by isolation mode
// ("process" | "hyperv"). Each test gets a private temp dir holding its
// $UVMSHIM_ROOT and its own copy of the busybox rootfs; TearDown removes the
// containers the test named (`uvmctl rm -f`) and fails the test if anything
// is left: state, sockets or bundles under $UVMSHIM_ROOT, a process naming the
// temp dir, a mount below it, or a sandbox cgroup. Then it ends those by pid.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "uvmctl_test_support.h"

namespace uvmshim::uvmctl_test {

class UvmctlTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Validation cases start nothing, so they also run without a boot image.
  virtual bool NeedsSandbox() const { return true; }

  const std::string& isolation() const { return GetParam(); }
  bool hyperv() const { return GetParam() == "hyperv"; }
  // Generous for a UVM booted under TCG on a shared 2-core machine.
  std::chrono::milliseconds StartTimeout() const { return hyperv() ? 300s : 60s; }

  const fs::path& dir() const { return tmp_->path(); }
  const fs::path& root() const { return root_; }
  const fs::path& rootfs() const { return rootfs_; }

  // A container id unique to this test (and to this temp dir), registered for
  // TearDown's `rm -f`.
  std::string Name(const std::string& tag);

  // uvmctl ARGS with UVMSHIM_ROOT=root(). Default timeout: StartTimeout().
  ProcessResult Uvmctl(const std::vector<std::string>& args, ProcessOptions options = {});
  ProcessResult UvmctlWithStdin(const std::vector<std::string>& args, std::string input);
  // uvmctl ARGS running in the background (UVMSHIM_ROOT=root()), output in
  // <dir>/<tag>.out and .err.
  std::unique_ptr<BackgroundProcess> UvmctlInBackground(const std::vector<std::string>& args,
                                                        const std::string& tag, OutputSink stdout_sink = nullptr);
  // {"run", "--isolation", I, "--rootfs", R, flags..., "--", command...}
  std::vector<std::string> RunArgs(const std::vector<std::string>& flags,
                                   const std::vector<std::string>& command) const;
  // The shell command line that runs uvmctl ARGS in this test's environment
  // (for tmux panes): `env UVMSHIM_ROOT=... uvmctl ARGS`.
  std::string ShellCommand(const std::vector<std::string>& args) const;

  // `run -d --name NAME flags... -- command...`; asserts it printed NAME.
  void RunDetached(const std::string& name, const std::vector<std::string>& flags,
                   const std::vector<std::string>& command);
  // The `uvmctl ps` row of `id`, split on blanks; empty when not listed.
  std::vector<std::string> PsRow(const std::string& id);

  // What TearDown would complain about, now.
  std::vector<std::string> Leftovers();

 private:
  void EndEverything();

  std::unique_ptr<TempDir> tmp_;
  fs::path root_;
  fs::path rootfs_;
  std::vector<std::string> names_;
};

// The words of the first line of TABLE whose first word is FIRST_WORD (none: empty).
std::vector<std::string> TableRow(const std::string& table, const std::string& first_word);

// Validation cases: they must fail before anything starts, in either mode.
class UvmctlValidationTest : public UvmctlTest {
 protected:
  bool NeedsSandbox() const override { return false; }
};

// "Isolation/Suite.Case/process", "Isolation/Suite.Case/hyperv": ctest labels
// select on the suffix.
#define UVMCTL_INSTANTIATE(suite)                                                          \
  INSTANTIATE_TEST_SUITE_P(Isolation, suite, ::testing::Values("process", "hyperv"),      \
                           [](const ::testing::TestParamInfo<std::string>& param_info) {        \
                             return param_info.param;                                     \
                           })

}  // namespace uvmshim::uvmctl_test
