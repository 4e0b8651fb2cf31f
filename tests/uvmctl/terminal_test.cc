// Terminal cases in a real terminal: a private tmux server (its own socket in
// the test's temp dir) whose pane runs `uvmctl run -it` or `uvmctl console`.
// Keys are typed with send-keys, the screen read with capture-pane. Commands
// print computed markers (MARK-$((6*7)) -> MARK-42) so the typed line itself
// never matches.
#include <fstream>
#include <regex>

#include "uvmctl_fixture.h"

namespace uvmshim::uvmctl_test {
namespace {

using TerminalTest = UvmctlTest;

// Window changes travel tmux -> uvmctl (SIGWINCH) -> shim -> agent
// asynchronously: retype the query until the screen shows `expected`.
bool TypeUntilShown(Tmux& tmux, const std::string& command, const std::string& expected,
                    std::chrono::milliseconds timeout) {
  return WaitFor(
      [&] {
        tmux.Type(command);
        return tmux.WaitForText(expected, 2s);
      },
      timeout, 0ms);
}

// The number after "KEY=" in the pane (the typed "KEY=$(" never matches).
std::optional<long> ShownNumber(Tmux& tmux, const std::string& key) {
  std::smatch match;
  const std::string screen = tmux.Capture();
  if (!std::regex_search(screen, match, std::regex(key + "=([0-9]+)"))) return std::nullopt;
  return std::stol(match[1]);
}

bool WaitPaneExit(Tmux& tmux, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return tmux.PaneDead(); }, timeout, 200ms);
}

TEST_P(TerminalTest, RunTtyFollowsTheWindowAndEndsOnExit) {
  const std::string name = Name("tty");
  Tmux tmux(dir(), ShellCommand(RunArgs({"-i", "-t", "--name", name}, {"/bin/sh"})), 100, 30);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto row = PsRow(name);
        return (row.size() >= 4 && row[3] == "running") || tmux.PaneDead();
      },
      StartTimeout(), 500ms))
      << "the container did not start:\n" << tmux.Capture();
  ASSERT_FALSE(tmux.PaneDead()) << tmux.Capture();

  tmux.Type("test -t 0 && test -t 1 && echo TTY-$((40+2))");
  EXPECT_TRUE(tmux.WaitForText("TTY-42", 60s)) << "stdin/stdout are not a terminal:\n" << tmux.Capture();
  tmux.Type("echo SIZE=$(stty size)");
  EXPECT_TRUE(tmux.WaitForText("SIZE=30 100", 30s)) << tmux.Capture();

  tmux.Resize(120, 40);
  ASSERT_EQ(tmux.PaneSize(), std::make_pair(120, 40));
  EXPECT_TRUE(TypeUntilShown(tmux, "echo SIZE=$(stty size)", "SIZE=40 120", 30s))
      << "the resize did not reach the container:\n" << tmux.Capture();

  // Ctrl-C goes through as a byte; the container's terminal makes it SIGINT.
  tmux.Type("sleep 1000");
  std::this_thread::sleep_for(1s);
  tmux.Key("C-c");
  tmux.Type("echo AFTER-$((1+1))");
  EXPECT_TRUE(tmux.WaitForText("AFTER-2", 30s)) << "Ctrl-C did not interrupt sleep:\n" << tmux.Capture();

  tmux.Type("exit");
  ASSERT_TRUE(WaitPaneExit(tmux, 60s)) << "uvmctl still runs after `exit`:\n" << tmux.Capture();
  EXPECT_EQ(tmux.PaneExitStatus(), std::optional<int>(0)) << tmux.Capture();
  EXPECT_TRUE(PsRow(name).empty()) << "the container outlived its session";
}

TEST_P(TerminalTest, RunTtyPropagatesTheExitStatus) {
  const std::string name = Name("ttyst");
  Tmux tmux(dir(), ShellCommand(RunArgs({"-i", "-t", "--name", name}, {"/bin/sh"})), 80, 24);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto row = PsRow(name);
        return (row.size() >= 4 && row[3] == "running") || tmux.PaneDead();
      },
      StartTimeout(), 500ms))
      << tmux.Capture();
  tmux.Type("exit 5");
  ASSERT_TRUE(WaitPaneExit(tmux, 60s)) << tmux.Capture();
  EXPECT_EQ(tmux.PaneExitStatus(), std::optional<int>(5)) << tmux.Capture();
}

TEST_P(TerminalTest, ExecTtyFollowsTheWindowAndEndsOnExit) {
  const std::string name = Name("etty");
  ASSERT_NO_FATAL_FAILURE(RunDetached(name, {}, {"sleep", "1000"}));
  Tmux tmux(dir(), ShellCommand({"exec", "-i", "-t", name, "--", "/bin/sh"}), 100, 30);
  tmux.Type("test -t 0 && test -t 1 && echo TTY-$((40+2))");
  EXPECT_TRUE(tmux.WaitForText("TTY-42", 60s)) << "stdin/stdout are not a terminal:\n" << tmux.Capture();
  tmux.Type("echo SIZE=$(stty size)");
  EXPECT_TRUE(tmux.WaitForText("SIZE=30 100", 30s)) << tmux.Capture();
  tmux.Resize(110, 35);
  ASSERT_EQ(tmux.PaneSize(), std::make_pair(110, 35));
  EXPECT_TRUE(TypeUntilShown(tmux, "echo SIZE=$(stty size)", "SIZE=35 110", 30s))
      << "the resize did not reach the exec'd shell:\n" << tmux.Capture();
  tmux.Type("exit 4");
  ASSERT_TRUE(WaitPaneExit(tmux, 60s)) << tmux.Capture();
  EXPECT_EQ(tmux.PaneExitStatus(), std::optional<int>(4)) << tmux.Capture();
  auto row = PsRow(name);
  ASSERT_GE(row.size(), 4u);
  EXPECT_EQ(row[3], "running") << "the container ended with its exec";
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

TEST_P(TerminalTest, ConsoleIsAShellBesideTheAgent) {
  const std::string name = Name("cons");
  const std::string marker = "marker-" + name;
  std::ofstream(rootfs() / marker) << "x";
  ASSERT_NO_FATAL_FAILURE(RunDetached(name, {}, {"sleep", "1000"}));

  Tmux tmux(dir(), ShellCommand({"console", name}), 100, 30);
  tmux.Type("echo MARK-$((6*7))");
  ASSERT_TRUE(tmux.WaitForText("MARK-42", 60s)) << "no shell in the console:\n" << tmux.Capture();

  // The shell is the agent's child: the UVM's /init, or the host's uvm-agent.
  tmux.Type("echo PARENT=$(cat /proc/$PPID/comm)");
  EXPECT_TRUE(tmux.WaitForText(hyperv() ? "PARENT=init" : "PARENT=uvm-agent", 30s)) << tmux.Capture();

  if (hyperv()) {
    tmux.Type("echo INIT=$(head -c 5 /proc/1/cmdline)");
    EXPECT_TRUE(tmux.WaitForText("INIT=/init", 30s)) << "pid 1 of the UVM is not the agent:\n" << tmux.Capture();
    // The sandbox share: the container's rootfs at /run/share/<id>@<n>/rootfs.
    tmux.Type("echo ROOTFS=$(ls /run/share/" + name + "@*/rootfs | grep -c " + marker + ")");
    EXPECT_TRUE(tmux.WaitForText("ROOTFS=1", 30s)) << "the container's rootfs is not at /run/share/" << name
                                                   << "@<n>/rootfs:\n" << tmux.Capture();
    // Positive control for the check below: the agent's ports exist in the UVM.
    tmux.Type("echo VPORTS=$(ls /dev | grep -c vport)");
    ASSERT_TRUE(WaitFor([&] { return ShownNumber(tmux, "VPORTS").has_value(); }, 30s)) << tmux.Capture();
    EXPECT_GT(*ShownNumber(tmux, "VPORTS"), 0) << tmux.Capture();
  } else {
    // On the host: the host's file system, where the rootfs directory is.
    tmux.Type("echo ROOTFS=$(ls " + rootfs().string() + " | grep -c " + marker + ")");
    EXPECT_TRUE(tmux.WaitForText("ROOTFS=1", 30s)) << tmux.Capture();
  }

  {
    SCOPED_TRACE("the container sees its rootfs at / and none of the agent's channel");
    auto r = Uvmctl({"exec", name, "--", "ls", "/", "/dev"});
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.out.find(marker), std::string::npos) << r.Describe();
    EXPECT_EQ(r.out.find("vport"), std::string::npos) << r.Describe();
    EXPECT_EQ(r.out.find("virtio-ports"), std::string::npos) << r.Describe();
    EXPECT_EQ(r.out.find("agent.sock"), std::string::npos) << r.Describe();
  }

  tmux.Type("echo SIZE=$(stty size)");
  EXPECT_TRUE(tmux.WaitForText("SIZE=30 100", 30s)) << tmux.Capture();
  tmux.Resize(90, 33);
  ASSERT_EQ(tmux.PaneSize(), std::make_pair(90, 33));
  EXPECT_TRUE(TypeUntilShown(tmux, "echo SIZE=$(stty size)", "SIZE=33 90", 30s))
      << "the resize did not reach the console:\n" << tmux.Capture();

  tmux.Type("exit");
  ASSERT_TRUE(WaitPaneExit(tmux, 30s)) << "uvmctl console still runs after `exit`:\n" << tmux.Capture();
  EXPECT_EQ(tmux.PaneExitStatus(), std::optional<int>(0)) << tmux.Capture();

  // Leaving the console leaves the container alone.
  auto row = PsRow(name);
  ASSERT_GE(row.size(), 4u);
  EXPECT_EQ(row[3], "running");
  auto rm = Uvmctl({"rm", "-f", name});
  EXPECT_EQ(rm.exit_code, 0) << rm.Describe();
}

UVMCTL_INSTANTIATE(TerminalTest);

}  // namespace
}  // namespace uvmshim::uvmctl_test
