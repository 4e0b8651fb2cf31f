// Signals sent to uvmctl reach the container's process (README: "Ctrl-C and
// other signals are forwarded"). The process traps them and exits 3, so a
// forwarded signal (exit 3) is told apart from uvmctl itself dying (128+N).
#include <signal.h>

#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

using SignalTest = UvmctlTest;

std::vector<std::string> TrapScript(const std::string& signal) {
  return {"sh", "-c", "trap 'echo got-" + signal + "; exit 3' " + signal +
                          "; echo ready; while :; do sleep 1; done"};
}

void ExpectForwarded(BackgroundProcess& uvmctl, int signal, const std::string& name,
                     std::chrono::milliseconds start_timeout) {
  ASSERT_TRUE(WaitFor([&] { return uvmctl.Stdout().find("ready\n") != std::string::npos; }, start_timeout))
      << "stdout: " << uvmctl.Stdout() << "\nstderr: " << uvmctl.Stderr();
  ASSERT_EQ(::kill(uvmctl.pid(), signal), 0);
  auto status = uvmctl.Wait(30s);
  ASSERT_TRUE(status) << "uvmctl still runs 30 s after signal " << signal << "; stdout: " << uvmctl.Stdout();
  EXPECT_EQ(*status, 3) << "128+N means uvmctl died of the signal instead of forwarding it; stderr: "
                        << uvmctl.Stderr();
  EXPECT_EQ(uvmctl.Stdout(), "ready\ngot-" + name + "\n") << uvmctl.Stderr();
}

TEST_P(SignalTest, RunForwardsSigterm) {
  auto uvmctl = UvmctlInBackground(RunArgs({"--name", Name("sigrun")}, TrapScript("TERM")), "run");
  ExpectForwarded(*uvmctl, SIGTERM, "TERM", StartTimeout());
}

TEST_P(SignalTest, RunForwardsSigint) {
  auto uvmctl = UvmctlInBackground(RunArgs({"--name", Name("sigint")}, TrapScript("INT")), "run");
  ExpectForwarded(*uvmctl, SIGINT, "INT", StartTimeout());
}

TEST_P(SignalTest, ExecForwardsSigterm) {
  const std::string name = Name("sigexec");
  ASSERT_NO_FATAL_FAILURE(RunDetached(name, {}, {"sleep", "1000"}));
  std::vector<std::string> args = {"exec", name, "--"};
  for (const auto& word : TrapScript("TERM")) args.push_back(word);
  auto uvmctl = UvmctlInBackground(args, "exec");
  ExpectForwarded(*uvmctl, SIGTERM, "TERM", 60s);
  auto row = PsRow(name);
  ASSERT_GE(row.size(), 4u);
  EXPECT_EQ(row[3], "running") << "the container ended with its exec";
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

UVMCTL_INSTANTIATE(SignalTest);

}  // namespace
}  // namespace uvmshim::uvmctl_test
