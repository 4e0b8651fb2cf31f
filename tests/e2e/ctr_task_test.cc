// ctr-level behaviour every runtime must share, run against runc (the reference,
// which also proves the harness) and the uvm shim in both isolation modes, with the
// mode chosen by annotation and by runtime config file. uvm cases are skipped until
// containerd-shim-uvm-v1 (and, for hyperv, the boot files) are built.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/utsname.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

class CtrTask : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(StartContainerd());
  }
  void TearDown() override { StopContainerd(); }
  const RuntimeCase& rc() const { return GetParam(); }
};

// ctr resizes the terminal right after the process starts: poll for the size (10 s).
constexpr const char* kWaitForSize24x80 =
    "i=0; while [ $i -lt 100 ]; do s=$(stty size 2>/dev/null); [ \"$s\" = \"24 80\" ] && break; "
    "i=$((i+1)); sleep 0.1; done; echo \"size=$s\"";

std::string HostKernelRelease() {
  struct utsname u{};
  ::uname(&u);
  return u.release;
}

TEST_P(CtrTask, RunEchoPrintsStdoutAndExitsZero) {
  auto r = CtrRunAnswer(rc(), {"--rm"}, "echo1", {"echo", "hi"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe() << env().LogTail();
  EXPECT_EQ(r.out, "hi\n") << r.Describe();
  ExpectNothingLeftOf("echo1");
}

TEST_P(CtrTask, RunPropagatesExitCodeAndStderr) {
  auto r = CtrRunAnswer(rc(), {"--rm"}, "exit42", {"sh", "-c", "echo out; echo err >&2; exit 42"});
  EXPECT_EQ(r.exit_code, 42) << r.Describe() << env().LogTail();
  EXPECT_EQ(r.out, "out\n") << r.Describe();
  EXPECT_NE(r.err.find("err\n"), std::string::npos) << r.Describe();
}

TEST_P(CtrTask, UnameShowsKernelOfIsolationMode) {
  auto r = CtrRunAnswer(rc(), {"--rm"}, "uname1", {"uname", "-r"});
  ASSERT_TRUE(r.ok()) << r.Describe() << env().LogTail();
  auto release = r.out.substr(0, r.out.find('\n'));
  if (rc().is_hyperv()) {
    // The UVM boots a 6.1 kernel (ours, or Debian's); the host here runs something else.
    EXPECT_EQ(release.rfind("6.1.", 0), 0u) << "guest kernel release: " << release;
    EXPECT_NE(release, HostKernelRelease());
  } else {
    EXPECT_EQ(release, HostKernelRelease());
  }
}

TEST_P(CtrTask, RunWithTtyShowsOutputOnTerminal) {
  // ctr -t needs a terminal on its own stdin: run it on a pty (24x80).
  auto r = CtrRun(rc(), {"--rm", "-t"}, "tty1",
                  {"sh", "-c", std::string("test -t 0 && test -t 1 && echo on-a-tty; ") + kWaitForSize24x80 + "; exit 5"},
                  CommandOptions().WithPty());
  EXPECT_EQ(r.exit_code, 5) << r.Describe() << env().LogTail();
  EXPECT_NE(r.out.find("on-a-tty"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("size=24 80"), std::string::npos) << "terminal size not passed on: " << r.Describe();
}

TEST_P(CtrTask, ExecRunsCommandInRunningTask) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "exec1", {"sleep", "1000"}));
  auto r = CtrExecAnswer(rc(), "exec1", "x1", {"sh", "-c", "echo from-exec; echo exec-err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe() << env().LogTail();
  EXPECT_EQ(r.out, "from-exec\n") << r.Describe();
  EXPECT_NE(r.err.find("exec-err\n"), std::string::npos) << r.Describe();
  // The same exec id can be used again once the first one is gone.
  auto again = env().Ctr({"task", "exec", "--exec-id", "x1", "exec1", "true"}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(again.ok()) << again.Describe();
  KillAndRemove(rc(), "exec1");
  ExpectNothingLeftOf("exec1");
}

TEST_P(CtrTask, ExecWithTtyShowsOutputOnTerminal) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "exectty1", {"sleep", "1000"}));
  auto r = env().Ctr({"task", "exec", "-t", "--exec-id", "t1", "exectty1", "sh", "-c",
                      std::string("test -t 0 && test -t 1 && echo exec-on-a-tty; ") + kWaitForSize24x80},
                     CommandOptions().WithPty().WithTimeout(rc().op_timeout()));
  EXPECT_EQ(r.exit_code, 0) << r.Describe() << env().LogTail();
  EXPECT_NE(r.out.find("exec-on-a-tty"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("size=24 80"), std::string::npos) << r.Describe();
  KillAndRemove(rc(), "exectty1");
}

TEST_P(CtrTask, KillInitWithSigkillGivesExitStatus137) {
  BackgroundCommand run(env().CtrArgv(RunArgs(rc(), {"--rm"}, "kill9", {"sleep", "1000"})),
                        env().dir() / "kill9.out");
  ASSERT_TRUE(WaitFor([&] { return run.Exited() || TaskStatus("kill9") == "RUNNING"; }, rc().op_timeout()) &&
              !run.Exited())
      << "task never RUNNING: " << run.Output() << env().LogTail();
  auto k = env().Ctr({"task", "kill", "-s", "SIGKILL", "kill9"});
  ASSERT_TRUE(k.ok()) << k.Describe();
  auto code = run.Wait(rc().op_timeout());
  ASSERT_TRUE(code.has_value()) << "ctr run did not return after SIGKILL; output: " << run.Output();
  EXPECT_EQ(*code, 128 + SIGKILL) << run.Output() << env().LogTail();
  ExpectNothingLeftOf("kill9");
}

TEST_P(CtrTask, KillExecWithSigtermGivesExitStatus143) {
  // SIGTERM to a container's init is ignored (no handler, PID-namespace rule), so the
  // signal goes to an exec'd process, which dies of it: 128 + 15.
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "killexec", {"sleep", "1000"}));
  BackgroundCommand exec(env().CtrArgv({"task", "exec", "--exec-id", "s1", "killexec", "sleep", "1000"}),
                         env().dir() / "killexec.out");
  bool signalled = false;
  WaitFor([&] {
    signalled = env().Ctr({"task", "kill", "-s", "SIGTERM", "--exec-id", "s1", "killexec"}).ok();
    return signalled || exec.Exited();
  }, rc().op_timeout());
  ASSERT_TRUE(signalled) << "could not signal exec s1 (ctr task exec "
                         << (exec.Exited() ? "already exited" : "still running") << "): " << exec.Output()
                         << env().LogTail();
  auto code = exec.Wait(rc().op_timeout());
  ASSERT_TRUE(code.has_value()) << "ctr task exec did not return after SIGTERM";
  EXPECT_EQ(*code, 128 + SIGTERM) << exec.Output() << env().LogTail();
  KillAndRemove(rc(), "killexec");
}

TEST_P(CtrTask, TaskPsListsTaskPid) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "ps1", {"sleep", "1000"}));
  auto pid = TaskPid("ps1");
  ASSERT_TRUE(pid.has_value());
  auto r = env().Ctr({"task", "ps", "ps1"}, CommandOptions().WithTimeout(rc().op_timeout()));
  ASSERT_TRUE(r.ok()) << r.Describe() << env().LogTail();
  EXPECT_TRUE(std::regex_search(r.out, std::regex("(^|\\n)" + std::to_string(*pid) + "\\s")))
      << "task pid " << *pid << " not in ctr task ps:\n" << r.out;
  KillAndRemove(rc(), "ps1");
}

TEST_P(CtrTask, TaskMetricsReportsStats) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "metrics1", {"sleep", "1000"}));
  auto r = env().Ctr({"task", "metrics", "metrics1"}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(r.ok()) << r.Describe() << env().LogTail();
  EXPECT_NE(r.out.find("memory"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("pids.current"), std::string::npos) << r.Describe();
  KillAndRemove(rc(), "metrics1");
}

TEST_P(CtrTask, DetachedRunThenDeleteLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "detach1", {"sleep", "1000"}));
  EXPECT_TRUE(std::filesystem::exists(env().BundleDir("detach1")));
  KillAndRemove(rc(), "detach1");
  ExpectNothingLeftOf("detach1");
}

TEST_P(CtrTask, EventsArriveInOrderForOneContainer) {
  BackgroundCommand events(env().CtrArgv({"events"}), env().dir() / "events.out");
  // ctr events subscribes asynchronously: publish probe events until one shows up.
  int probe = 0;
  bool subscribed = WaitFor([&] {
    auto id = "probe" + std::to_string(++probe);
    env().Ctr({"container", "create", env().image_ref(), id, "true"});
    env().Ctr({"container", "rm", id});
    return events.Output().find("/containers/create") != std::string::npos;
  }, 30s);
  ASSERT_TRUE(subscribed) << "ctr events never reported anything: " << events.Output();
  auto r = CtrRun(rc(), {"--rm"}, "events1", {"true"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  const std::string marker = "\"container_id\":\"events1\"";
  ASSERT_TRUE(WaitFor([&] {
    auto out = events.Output();
    return out.find("/tasks/delete") != std::string::npos;
  }, 10s)) << "no /tasks/delete event seen:\n" << events.Output();
  events.Kill(SIGKILL);
  events.Wait(10s);

  // Lines: DATE TIME ZONE UTC NAMESPACE TOPIC JSON
  std::vector<std::string> topics;
  std::istringstream lines(events.Output());
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find(marker) == std::string::npos) continue;
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    for (const auto& x : f) {
      if (x.rfind("/tasks/", 0) == 0) { topics.push_back(x); break; }
    }
  }
  std::vector<std::string> expected{"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"};
  EXPECT_EQ(topics, expected) << "events:\n" << events.Output();
}

TEST_P(CtrTask, Stdout16MiBArrivesIntact) {
  // Random bytes, hashed inside the container: loss, duplication or reordering all show.
  constexpr size_t kSize = 16 << 20;
  auto r = CtrRunAnswer(rc(), {"--rm"}, "bulk1",
                  {"sh", "-c", "head -c 16777216 /dev/urandom > /tmp/data && sha256sum /tmp/data >&2 && cat /tmp/data"},
                  CommandOptions().WithTimeout(rc().op_timeout() + 60s));
  ASSERT_EQ(r.exit_code, 0) << "exit " << r.exit_code << " stderr: " << r.err << env().LogTail();
  ASSERT_EQ(r.out.size(), kSize);
  auto inside = r.err.substr(0, std::min<size_t>(64, r.err.size()));
  EXPECT_EQ(Sha256Hex(r.out), inside) << "container-side sha256sum said: " << r.err;
}

TEST_P(CtrTask, BackgroundChildDoesNotHoldRunOpen) {
  // The init exits while its child still holds stdout: ctr run must return promptly.
  auto flags = AnswerMountFlags(rc());
  flags.insert(flags.begin(), "--rm");
  BackgroundCommand run(
      env().CtrArgv(RunArgs(rc(), flags, "bgchild", {"sh", "-c", "sleep 1000 & echo done; " + MarkCommand(rc(), "bgchild")})),
      env().dir() / "bgchild.out");
  auto done = [&] { return PrintedOrMarked(rc(), "bgchild", run.Output().find("done") != std::string::npos); };
  ASSERT_TRUE(WaitFor([&] { return done() || run.Exited(); }, rc().op_timeout()) && done())
      << "no output: " << run.Output() << env().LogTail();
  auto code = run.Wait(10s);
  ASSERT_TRUE(code.has_value()) << "ctr run still running 10 s after its init printed 'done' and exited";
  EXPECT_EQ(*code, 0) << run.Output();
  ExpectNothingLeftOf("bgchild");
}

TEST_P(CtrTask, ExecWithBackgroundChildDoesNotHang) {
  // Kata #1160/#4747: the exec'd shell exits, its background child keeps the pipe.
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "execbg", {"sleep", "1000"}));
  BackgroundCommand exec(env().CtrArgv({"task", "exec", "--exec-id", "bg1", "execbg", "sh", "-c",
                                        "sleep 1000 & echo done; " + MarkCommand(rc(), "execbg")}),
                         env().dir() / "execbg.out");
  auto done = [&] { return PrintedOrMarked(rc(), "execbg", exec.Output().find("done") != std::string::npos); };
  ASSERT_TRUE(WaitFor([&] { return done() || exec.Exited(); }, rc().op_timeout()) && done())
      << "no output: " << exec.Output() << env().LogTail();
  // runc's shim returns about 2 s after the exec exits.
  auto code = exec.Wait(10s);
  ASSERT_TRUE(code.has_value()) << "ctr task exec still running 10 s after its process exited";
  EXPECT_EQ(*code, 0) << exec.Output();
  KillAndRemove(rc(), "execbg");
}

TEST_P(CtrTask, ContainerdRestartKeepsTaskReachable) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "restart1", {"sleep", "1000"}));
  auto pid_before = TaskPid("restart1");
  ASSERT_NO_THROW(env().Restart());
  EXPECT_TRUE(WaitForStatus("restart1", "RUNNING", 30s))
      << "after containerd restart: " << env().Ctr({"task", "ls"}).Describe() << env().LogTail();
  EXPECT_EQ(TaskPid("restart1"), pid_before);
  auto exec = CtrExecAnswer(rc(), "restart1", "after", {"echo", "still-here"});
  EXPECT_EQ(exec.out, "still-here\n") << exec.Describe();
  KillAndRemove(rc(), "restart1");
  ExpectNothingLeftOf("restart1");
}

TEST_P(CtrTask, ShimKilledThenForceRemoveLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "shimkill", {"sleep", "1000"}));
  auto task_pid = TaskPid("shimkill");
  auto shim = FindShimPid(env().address(), "shimkill");
  ASSERT_TRUE(shim.has_value()) << "no shim process with -address " << env().address() << " -id shimkill";
  std::string socket;
  std::ifstream(env().BundleDir("shimkill") / "address") >> socket;
  if (socket.rfind("unix://", 0) == 0) socket.erase(0, 7);

  ASSERT_EQ(::kill(*shim, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return !PidAlive(*shim); }, 10s));
  // containerd may have cleaned the task up by itself already ("not found" is fine).
  auto rm = env().Ctr({"task", "rm", "-f", "shimkill"}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(rm.ok() || rm.err.find("not found") != std::string::npos) << rm.Describe() << env().LogTail();
  auto crm = env().Ctr({"container", "rm", "shimkill"}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(crm.ok()) << crm.Describe() << env().LogTail();

  ExpectNothingLeftOf("shimkill");
  if (task_pid && !rc().is_hyperv()) {
    EXPECT_TRUE(WaitFor([&] { return !PidAlive(static_cast<pid_t>(*task_pid)); }, 10s))
        << "container process " << *task_pid << " outlived its shim";
  }
  const bool socket_left = !socket.empty() && socket.front() == '/' && std::filesystem::exists(socket);
  // runc's shim leaves its /run/containerd/s/<hash> socket behind when SIGKILLed (a
  // known runc-shim leak, not asserted for runc); ours must not.
  if (rc().is_uvm()) {
    EXPECT_FALSE(socket_left) << "shim socket left behind: " << socket;
  }
  if (socket_left && socket.rfind("/run/containerd/s/", 0) == 0) std::filesystem::remove(socket);
  // containerd itself is still fine.
  auto again = CtrRunAnswer(rc(), {"--rm"}, "aftershim", {"echo", "ok"});
  EXPECT_EQ(again.out, "ok\n") << again.Describe() << env().LogTail();
}

// Cases that only make sense with a VM process (hyperv isolation).
class CtrTaskHyperv : public CtrTask {};

TEST_P(CtrTaskHyperv, VmKilledStopsTaskWithNonZeroStatus) {
  BackgroundCommand run(env().CtrArgv(RunArgs(rc(), {"--rm"}, "vmkill", {"sleep", "1000"})),
                        env().dir() / "vmkill.out");
  ASSERT_TRUE(WaitFor([&] { return run.Exited() || TaskStatus("vmkill") == "RUNNING"; }, rc().op_timeout()) &&
              !run.Exited())
      << "task never RUNNING: " << run.Output() << env().LogTail();
  auto shim = FindShimPid(env().address(), "vmkill");
  ASSERT_TRUE(shim.has_value());
  std::optional<pid_t> vm;
  for (pid_t pid : DescendantsOf(*shim)) {
    auto exe = ProcessExeName(pid);
    if (exe && exe->rfind("qemu-system", 0) == 0) vm = pid;
  }
  ASSERT_TRUE(vm.has_value()) << "no qemu-system-* process below shim " << *shim;
  ASSERT_EQ(::kill(*vm, SIGKILL), 0);
  auto code = run.Wait(60s);
  ASSERT_TRUE(code.has_value()) << "ctr run did not return after its VM was killed; " << run.Output()
                                << env().LogTail();
  EXPECT_NE(*code, 0) << run.Output();
  ExpectNothingLeftOf("vmkill");
}

// The guest's clock keeps the host's pace. Under TCG the guest calibrates its TSC on a vCPU a
// loaded host starves (50 and 350 MHz for 2594 seen at load 15) and with that clocksource its
// time ran up to 50x fast: gRPC deadlines expired in the guest within seconds. The guest's uptime
// can never exceed the wall time of the run that booted it.
TEST_P(CtrTaskHyperv, GuestClockKeepsHostTime) {
  const auto began = std::chrono::steady_clock::now();
  auto r = CtrRun(rc(), {"--rm"}, "clock1",
                  {"sh", "-c", "cat /sys/devices/system/clocksource/clocksource0/current_clocksource; "
                               "cut -d' ' -f1 /proc/uptime"});
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  ASSERT_TRUE(r.ok()) << r.Describe() << env().LogTail();
  std::istringstream lines(r.out);
  std::string clocksource;
  double uptime_s = -1;
  lines >> clocksource >> uptime_s;
  EXPECT_TRUE(clocksource == "hpet" || clocksource == "kvm-clock") << "guest clocksource: " << r.out;
  EXPECT_GT(uptime_s, 0) << r.out;
  EXPECT_LE(uptime_s, wall_s + 1.0) << "the guest's clock ran ahead of the host's: uptime " << uptime_s
                                    << " s after a run of " << wall_s << " s";
  ExpectNothingLeftOf("clock1");
}

std::string CaseName(const ::testing::TestParamInfo<RuntimeCase>& param_info) { return param_info.param.name; }

// The VM-kill case once per way of selecting hyperv (annotation, config file).
std::vector<RuntimeCase> HypervCases() {
  return {{"uvm_hyperv_annotation", kUvmRuntime, Isolation::kHyperv, ModeSelector::kAnnotation},
          {"uvm_hyperv_configfile", kUvmRuntime, Isolation::kHyperv, ModeSelector::kConfigFile}};
}

INSTANTIATE_TEST_SUITE_P(Runtimes, CtrTask, ::testing::ValuesIn(AllRuntimeCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(Runtimes, CtrTaskHyperv, ::testing::ValuesIn(HypervCases()), CaseName);

}  // namespace
}  // namespace uvmshim::e2e
