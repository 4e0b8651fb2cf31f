// Pods through ctr, the way containerd's CRI plugin makes them (issue #9): a
// sandbox container and app containers carrying the CRI annotations, the apps
// joining the sandbox's namespaces by /proc/<pid>/ns paths. In both isolation
// modes: one shim per pod, in hyperv exactly one QEMU per pod. Also Update +
// OOM, sizing annotations, and CRI-length ids under a long UVMSHIM_ROOT.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "ctr_fixture.h"

namespace uvmshim::e2e {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTypeAnnotation = "io.kubernetes.cri.container-type";
constexpr const char* kSandboxAnnotation = "io.kubernetes.cri.sandbox-id";

std::vector<RuntimeCase> PodCases() {
  return {{"uvm_process", kUvmRuntime, Isolation::kProcess, ModeSelector::kAnnotation},
          {"uvm_hyperv", kUvmRuntime, Isolation::kHyperv, ModeSelector::kAnnotation}};
}
std::vector<RuntimeCase> HypervPodCases() { return {PodCases()[1]}; }

// The CRI annotations of a pod's sandbox or app container.
std::vector<std::string> PodFlags(const std::string& type, const std::string& sandbox_id) {
  return {"--annotation", std::string(kTypeAnnotation) + "=" + type, "--annotation",
          std::string(kSandboxAnnotation) + "=" + sandbox_id};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

class Pod : public CtrFixture, public ::testing::TestWithParam<RuntimeCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(GetParam())) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(StartContainerd(containerd_env_));
  }
  void TearDown() override { StopContainerd(); }
  const RuntimeCase& rc() const { return GetParam(); }

  // QEMU processes started for this containerd (their argv names our dir).
  std::vector<pid_t> Vms() {
    std::vector<pid_t> vms;
    for (pid_t pid : PidsReferringTo(env().dir())) {
      auto exe = ProcessExeName(pid);
      if (exe && exe->find("qemu-system") != std::string::npos) vms.push_back(pid);
    }
    return vms;
  }
  // Shim daemons of this containerd (any id).
  std::vector<pid_t> Shims() {
    std::vector<pid_t> shims;
    for (pid_t pid : AllPids()) {
      auto args = ProcessArgs(pid);
      if (args.empty() || args[0].find("containerd-shim-uvm-v1") == std::string::npos) continue;
      bool ours = false, action = false;
      for (size_t i = 0; i + 1 < args.size(); ++i) ours |= args[i] == "-address" && args[i + 1] == env().address();
      for (const auto& a : args) action |= a == "start" || a == "delete";
      if (ours && !action && PidAlive(pid)) shims.push_back(pid);
    }
    return shims;
  }
  CommandResult Exec(const std::string& id, const std::string& exec_id, const std::string& script) {
    return env().Ctr({"task", "exec", "--exec-id", exec_id, id, "sh", "-c", script},
                     CommandOptions().WithTimeout(rc().op_timeout()));
  }
  void StartSandbox(const std::string& id, std::vector<std::string> flags = {}) {
    auto pod = PodFlags("sandbox", id);
    flags.insert(flags.end(), pod.begin(), pod.end());
    ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), id, {"sleep", "100000"}, flags));
  }
  // An app container of the pod joining the sandbox task's ipc, uts and pid namespaces.
  std::vector<std::string> AppFlags(const std::string& sandbox_id) {
    auto pid = TaskPid(sandbox_id);
    EXPECT_TRUE(pid.has_value());
    auto flags = PodFlags("container", sandbox_id);
    for (const char* ns : {"ipc", "uts", "pid"})
      flags.insert(flags.end(), {"--with-ns", std::string(ns) + ":/proc/" + std::to_string(pid.value_or(0)) + "/ns/" + ns});
    return flags;
  }

  std::vector<std::string> containerd_env_;
};

constexpr const char* kNamespaces =
    "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; readlink /proc/self/ns/pid; hostname";

TEST_P(Pod, AppContainersShareTheSandboxAndItsOneShimAndVm) {
  ASSERT_NO_FATAL_FAILURE(StartSandbox("pod1"));
  const auto shims = Shims();
  ASSERT_EQ(shims.size(), 1u) << "one shim for the sandbox";
  if (rc().is_hyperv()) {
    EXPECT_EQ(Vms().size(), 1u);
  }

  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "app1", {"sleep", "100000"}, AppFlags("pod1")));
  EXPECT_EQ(Shims(), shims) << "app1 must be served by the pod's shim";
  if (rc().is_hyperv()) {
    EXPECT_EQ(Vms().size(), 1u) << "app1 must run in the pod's UVM";
  }

  auto in_pause = Exec("pod1", "ns1", kNamespaces);
  auto in_app = Exec("app1", "ns2", kNamespaces);
  ASSERT_TRUE(in_pause.ok()) << in_pause.Describe() << env().LogTail();
  ASSERT_TRUE(in_app.ok()) << in_app.Describe() << env().LogTail();
  EXPECT_EQ(Lines(in_app.out), Lines(in_pause.out)) << "ipc, uts, pid namespaces and hostname differ";
  EXPECT_EQ(Lines(in_app.out).size(), 4u) << in_app.out;
  // A shared pid namespace: the app sees the pause process as PID 1.
  auto ps = Exec("app1", "ps1", "cat /proc/1/cmdline | tr '\\0' ' '; echo");
  ASSERT_TRUE(ps.ok()) << ps.Describe();
  EXPECT_EQ(Lines(ps.out).at(0), "sleep 100000 ") << ps.out;

  // Removing an app container leaves the pod running.
  KillAndRemove(rc(), "app1");
  EXPECT_EQ(TaskStatus("pod1"), "RUNNING");
  EXPECT_EQ(Shims(), shims);
  // Adding one later works, in the same sandbox.
  auto app2 = CtrRun(rc(), AppFlags("pod1"), "app2", {"sh", "-c", "readlink /proc/self/ns/ipc; cat /proc/1/cmdline"});
  ASSERT_TRUE(app2.ok()) << app2.Describe() << env().LogTail();
  EXPECT_EQ(Lines(app2.out).at(0), Lines(in_pause.out).at(0));
  EXPECT_NE(app2.out.find("sleep"), std::string::npos) << app2.out;
  env().Ctr({"container", "delete", "app2"});
  EXPECT_EQ(Shims(), shims);
  if (rc().is_hyperv()) {
    EXPECT_EQ(Vms().size(), 1u);
  }

  // Deleting the sandbox task ends the UVM and the shim.
  KillAndRemove(rc(), "pod1");
  EXPECT_TRUE(WaitFor([&] { return Shims().empty() && Vms().empty(); }, 30s))
      << Shims().size() << " shims, " << Vms().size() << " VMs left";
  ExpectNothingLeftOf("pod1");
  ExpectNothingLeftOf("app1");
}

TEST_P(Pod, AKilledPodShimIsCleanedUpTaskByTask) {
  ASSERT_NO_FATAL_FAILURE(StartSandbox("crash1"));
  ASSERT_NO_FATAL_FAILURE(StartDetached(rc(), "crashapp", {"sleep", "100000"}, AppFlags("crash1")));
  auto shims = Shims();
  ASSERT_EQ(shims.size(), 1u);
  ASSERT_EQ(::kill(shims[0], SIGKILL), 0);
  // containerd sees the connection close and runs `shim delete` for each task.
  EXPECT_TRUE(WaitFor([&] { return TaskStatus("crash1") != "RUNNING" && TaskStatus("crashapp") != "RUNNING"; },
                      rc().op_timeout()))
      << env().Ctr({"task", "ls"}).out << env().LogTail();
  for (const char* id : {"crashapp", "crash1"}) {
    env().Ctr({"task", "delete", id}, CommandOptions().WithTimeout(rc().op_timeout()));
    env().Ctr({"container", "delete", id}, CommandOptions().WithTimeout(rc().op_timeout()));
  }
  EXPECT_TRUE(WaitFor([&] { return Shims().empty() && Vms().empty(); }, 30s));
  ExpectNothingLeftOf("crashapp");
  ExpectNothingLeftOf("crash1");
}

TEST_P(Pod, AppContainerWithoutItsSandboxIsRefused) {
  auto r = CtrRun(rc(), PodFlags("container", "nopod"), "orphan1", {"true"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("nopod"), std::string::npos) << r.Describe();
  env().Ctr({"container", "delete", "orphan1"});
  ExpectNothingLeftOf("orphan1");
}

// Process isolation joins host paths, as runc does: these are hyperv-only.
class HypervPod : public Pod {};

TEST_P(HypervPod, JoinsOnlyNamespacesOfThePodsTasks) {
  ASSERT_NO_FATAL_FAILURE(StartSandbox("nspod"));
  // PID 1 of the UVM is the agent: a container must never join its namespaces.
  for (const char* path : {"/proc/1/ns/pid", "/proc/self/ns/pid", "/proc/99999/ns/pid"}) {
    auto flags = PodFlags("container", "nspod");
    flags.insert(flags.end(), {"--with-ns", std::string("pid:") + path});
    auto r = CtrRun(rc(), flags, "nsapp", {"true"});
    EXPECT_NE(r.exit_code, 0) << path << ": " << r.Describe();
    EXPECT_NE((r.out + r.err).find("linux.namespaces"), std::string::npos) << r.Describe();
    env().Ctr({"container", "delete", "nsapp"});
  }
  EXPECT_EQ(TaskStatus("nspod"), "RUNNING") << "the pod survives refused containers";
  KillAndRemove(rc(), "nspod");
  ExpectNothingLeftOf("nsapp");
  ExpectNothingLeftOf("nspod");
}

TEST_P(Pod, UpdateLimitsMemoryAndOomKillIsReported) {
  BackgroundCommand events(env().CtrArgv({"events"}), env().dir() / "events.out");
  int probe = 0;
  ASSERT_TRUE(WaitFor([&] {
    auto id = "probe" + std::to_string(++probe);
    env().Ctr({"container", "create", env().image_ref(), id, "true"});
    env().Ctr({"container", "rm", id});
    return events.Output().find("/containers/create") != std::string::npos;
  }, 30s)) << "ctr events never reported anything";

  // The init waits for /go, then needs 64 MiB at once (dd's buffer).
  ASSERT_NO_FATAL_FAILURE(StartDetached(
      rc(), "oom1", {"sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exec dd if=/dev/zero of=/dev/null bs=64M count=1"}));
  // ctr 1.6 has no `task update`: uvmctl sends the same Update to the shim.
  auto update = RunCommand({(BuildDir() / "bin" / "uvmctl").string(), "update", "--memory-limit", "33554432", "oom1"},
                           CommandOptions().WithTimeout(rc().op_timeout()).WithEnv("UVMSHIM_ROOT=" +
                                                                                  env().uvmshim_root().string()));
  ASSERT_TRUE(update.ok()) << update.Describe() << env().LogTail();
  auto metrics = env().Ctr({"task", "metrics", "oom1"}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_NE(metrics.out.find("33554432"), std::string::npos) << "memory limit not applied:\n" << metrics.out;

  auto go = Exec("oom1", "go", "touch /tmp/go");
  ASSERT_TRUE(go.ok()) << go.Describe();
  ASSERT_TRUE(WaitForStatus("oom1", "STOPPED", rc().op_timeout())) << env().LogTail();
  auto wait = env().Ctr({"task", "delete", "oom1"}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(wait.ok()) << wait.Describe();
  ASSERT_TRUE(WaitFor([&] { return events.Output().find("/tasks/delete") != std::string::npos; }, 20s))
      << events.Output();
  events.Kill(SIGKILL);
  events.Wait(10s);
  std::vector<std::string> topics;
  for (const auto& line : Lines(events.Output())) {
    if (line.find("\"container_id\":\"oom1\"") == std::string::npos) continue;
    if (line.find("/tasks/exit") != std::string::npos && line.find("\"id\":\"oom1\"") == std::string::npos)
      continue;  // the exec that made the init go
    for (const char* topic : {"/tasks/oom", "/tasks/exit"})
      if (line.find(std::string(" ") + topic + " ") != std::string::npos) topics.push_back(topic);
    if (line.find("/tasks/exit") != std::string::npos) {
      EXPECT_NE(line.find("\"exit_status\":137"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(topics, (std::vector<std::string>{"/tasks/oom", "/tasks/exit"})) << events.Output();
  env().Ctr({"container", "delete", "oom1"});
  ExpectNothingLeftOf("oom1");
}

TEST_P(Pod, NonsenseSizeAnnotationsAreRefusedAndLeaveNothing) {
  for (const auto& [annotation, value] : std::vector<std::pair<std::string, std::string>>{
           {"io.uvmshim.vm.memory-mb", "lots"},
           {"io.uvmshim.vm.memory-mb", "1"},
           {"io.uvmshim.vm.cpus", "0"},
           {"io.kubernetes.cri.sandbox-memory", "-5"}}) {
    auto flags = PodFlags("sandbox", "badsize");
    flags.insert(flags.end(), {"--annotation", annotation + "=" + value});
    auto r = CtrRun(rc(), flags, "badsize", {"true"});
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE((r.out + r.err).find(annotation), std::string::npos) << "error must name " << annotation << ": "
                                                                   << r.Describe();
    env().Ctr({"container", "delete", "badsize"});
    ExpectNothingLeftOf("badsize");
  }
}

TEST_P(HypervPod, SizingAnnotationsSizeTheUvm) {
  auto flags = PodFlags("sandbox", "sized1");
  // 300 MiB of pod limits + the default 128 MiB overhead.
  flags.insert(flags.end(), {"--annotation", "io.kubernetes.cri.sandbox-memory=314572800"});
  auto r = CtrRun(rc(), flags, "sized1", {"sh", "-c", "grep MemTotal /proc/meminfo"});
  ASSERT_TRUE(r.ok()) << r.Describe() << env().LogTail();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("MemTotal:\\s+(\\d+) kB"))) << r.out;
  const long mib = std::stol(m[1]) / 1024;
  EXPECT_GT(mib, 380) << r.out;  // 428 MiB less what the kernel keeps
  EXPECT_LE(mib, 428) << r.out;
  env().Ctr({"container", "delete", "sized1"});
  ExpectNothingLeftOf("sized1");
}

// CRI-length ids (64 hex) with a 150-byte UVMSHIM_ROOT.
class LongRootPod : public Pod {
 protected:
  void SetUp() override {
    // The root is only known once the env dir exists: use a fixed-length name below /tmp.
    long_root_ = fs::path("/tmp") / ("uvmshim-long-" + std::to_string(::getpid()) + "-" + rc().mode());
    while (long_root_.native().size() < 150) long_root_ += "x";
    containerd_env_ = {"UVMSHIM_ROOT=" + long_root_.string()};
    Pod::SetUp();
  }
  void TearDown() override {
    Pod::TearDown();
    std::error_code ignored;
    fs::remove_all(long_root_, ignored);
  }
  fs::path long_root_;
};

TEST_P(LongRootPod, SixtyFourHexIdsWorkUnderALongRoot) {
  ASSERT_EQ(long_root_.native().size(), 150u);
  const std::string sandbox(64, 'a');
  std::string app = std::string(63, 'b') + "1";
  ASSERT_NO_FATAL_FAILURE(StartSandbox(sandbox));
  auto r = CtrRun(rc(), AppFlags(sandbox), app, {"echo", "hello from a long id"});
  EXPECT_TRUE(r.ok()) << r.Describe() << env().LogTail();
  EXPECT_EQ(r.out, "hello from a long id\n");
  env().Ctr({"container", "delete", app});
  KillAndRemove(rc(), sandbox);
  EXPECT_TRUE(WaitFor([&] { return Shims().empty(); }, 30s));
  std::vector<std::string> left;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(long_root_, ec)) left.push_back(e.path().string());
  EXPECT_TRUE(left.empty()) << "left in the root:\n" << Join(left);
  auto mounts = MountsUnder(long_root_);
  EXPECT_TRUE(mounts.empty()) << Join(mounts);
}

std::string CaseName(const ::testing::TestParamInfo<RuntimeCase>& param_info) { return param_info.param.name; }
INSTANTIATE_TEST_SUITE_P(Modes, Pod, ::testing::ValuesIn(PodCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(Modes, HypervPod, ::testing::ValuesIn(HypervPodCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(Modes, LongRootPod, ::testing::ValuesIn(PodCases()), CaseName);

}  // namespace
}  // namespace uvmshim::e2e
