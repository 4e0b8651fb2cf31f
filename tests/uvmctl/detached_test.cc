// Detached containers: `run -d`, ps, exec, logs, logs --console, rm, and a
// duplicate --name. Both isolation modes.
#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

using DetachedTest = UvmctlTest;
using DetachedValidationTest = UvmctlValidationTest;

TEST_P(DetachedTest, Lifecycle) {
  const std::string name = Name("life");
  ASSERT_NO_FATAL_FAILURE(RunDetached(name, {}, {"sh", "-c", "echo started; echo to-err >&2; sleep 1000"}));

  {
    SCOPED_TRACE("ps lists it with its isolation");
    auto row = PsRow(name);
    ASSERT_GE(row.size(), 4u) << "not in `uvmctl ps`";
    EXPECT_EQ(row[1], "uvmctl");
    EXPECT_EQ(row[2], isolation());
    EXPECT_EQ(row[3], "running");
  }
  {
    SCOPED_TRACE("logs shows what it printed (stdout and stderr)");
    ProcessResult logs;
    EXPECT_TRUE(WaitFor(
        [&] {
          logs = Uvmctl({"logs", name}, WithTimeout(30s));
          return logs.out.find("started\n") != std::string::npos && logs.out.find("to-err\n") != std::string::npos;
        },
        30s, 300ms))
        << logs.Describe();
    EXPECT_EQ(logs.exit_code, 0) << logs.Describe();
  }
  {
    SCOPED_TRACE("exec");
    auto r = Uvmctl({"exec", name, "--", "echo", "hi"});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, "hi\n") << r.Describe();
    EXPECT_EQ(r.err, "") << r.Describe();
  }
  {
    SCOPED_TRACE("exec: stderr and exit status");
    auto r = Uvmctl({"exec", name, "--", "sh", "-c", "echo e >&2; exit 3"});
    EXPECT_EQ(r.exit_code, 3) << r.Describe();
    EXPECT_EQ(r.err, "e\n") << r.Describe();
  }
  {
    SCOPED_TRACE("exec: killed by a signal is 128+N (an exec is not pid 1)");
    auto r = Uvmctl({"exec", name, "--", "sh", "-c", "kill -9 $$"});
    EXPECT_EQ(r.exit_code, 128 + 9) << r.Describe();
  }
  {
    SCOPED_TRACE("exec shares the container (its pid 1: sh exec'd its last command)");
    auto r = Uvmctl({"exec", name, "--", "cat", "/proc/1/cmdline"});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, std::string("sleep\0" "1000\0", 11)) << r.Describe();
  }
  {
    SCOPED_TRACE("exec -i relays stdin to EOF");
    auto r = UvmctlWithStdin({"exec", "-i", name, "--", "cat"}, "hello from stdin\n");
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, "hello from stdin\n") << r.Describe();
  }
  {
    SCOPED_TRACE("a second container of the same name is refused");
    auto r = Uvmctl(RunArgs({"--name", name}, {"true"}));
    EXPECT_EQ(r.exit_code, 125) << r.Describe();
    EXPECT_NE(r.err.find(name), std::string::npos) << r.Describe();
    auto row = PsRow(name);
    ASSERT_GE(row.size(), 4u) << "the first one disappeared";
    EXPECT_EQ(row[3], "running");
  }
  {
    SCOPED_TRACE("rm refuses a running container");
    auto r = Uvmctl({"rm", name});
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find("running"), std::string::npos) << r.Describe();
    auto exec = Uvmctl({"exec", name, "--", "true"});
    EXPECT_EQ(exec.exit_code, 0) << "still usable after a refused rm: " << exec.Describe();
  }
  {
    SCOPED_TRACE("rm -f ends it");
    auto r = Uvmctl({"rm", "-f", name});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_TRUE(PsRow(name).empty());
    std::vector<std::string> left;
    EXPECT_TRUE(WaitFor([&] { return (left = Leftovers()).empty(); }, 10s))
        << "after rm -f: " << testing::PrintToString(left);
  }
}

// uvmctl sends CloseIO as soon as its stdin ends, which for an exec can be
// before Start: the shim must not lose it (cat would wait forever).
TEST_P(DetachedTest, ExecStdinEofIsNeverLost) {
  const std::string name = Name("eof");
  ASSERT_NO_FATAL_FAILURE(RunDetached(name, {}, {"sleep", "1000"}));
  for (int i = 0; i < 10; ++i) {
    ProcessOptions options;
    options.stdin_data = "line " + std::to_string(i) + "\n";
    options.timeout = 60s;
    auto r = Uvmctl({"exec", "-i", name, "--", "cat"}, options);
    ASSERT_EQ(r.exit_code, 0) << "round " << i << ": " << r.Describe();
    ASSERT_EQ(r.out, *options.stdin_data) << r.Describe();
  }
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

TEST_P(DetachedTest, ConsoleLogShowsTheSandbox) {
  const std::string name = Name("clog");
  ASSERT_NO_FATAL_FAILURE(RunDetached(name, {}, {"sleep", "1000"}));
  auto r = Uvmctl({"logs", "--console", name}, WithTimeout(30s));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  if (hyperv()) {
    // The UVM's serial console: the kernel's banner, or at least the agent's lines.
    EXPECT_TRUE(r.out.find("Linux version") != std::string::npos || r.out.find("event=") != std::string::npos)
        << r.Describe();
  } else {
    // The host agent's log: it says where it listens.
    EXPECT_NE(r.out.find("event=listening"), std::string::npos) << r.Describe();
    EXPECT_NE(r.out.find(root().string()), std::string::npos) << r.Describe();
  }
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

TEST_P(DetachedValidationTest, UnknownContainerIsAnError) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"exec", "no-such-ctr", "--", "true"}, {"logs", "no-such-ctr"}, {"rm", "-f", "no-such-ctr"}}) {
    auto r = Uvmctl(args, WithTimeout(30s));
    EXPECT_EQ(r.exit_code, 125) << r.Describe();
    EXPECT_NE(r.err.find("no-such-ctr"), std::string::npos) << r.Describe();
  }
}

UVMCTL_INSTANTIATE(DetachedTest);
UVMCTL_INSTANTIATE(DetachedValidationTest);

}  // namespace
}  // namespace uvmshim::uvmctl_test
