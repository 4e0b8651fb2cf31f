// `docker run` and friends through a private dockerd, side by side: runc
// (the control), uvm-runc in process isolation and in hyperv isolation. Each
// case asserts what Docker users see: output, exit codes, stdio, exec, logs,
// state, volumes, and that nothing is left once a container is gone.
#include <signal.h>
#include <sys/utsname.h>

#include <fstream>
#include <iostream>

#include "docker_fixture.h"

namespace uvmshim::e2e {
namespace {
namespace fs = std::filesystem;

class DockerRun : public DockerCase {
 protected:
  // docker run -d ... and its id.
  std::string StartDetached(const std::vector<std::string>& cmd, std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), "-d");
    auto r = Run(flags, cmd);
    EXPECT_TRUE(r.ok()) << r.Describe() << docker().LogTail();
    return Trim(r.out);
  }
  std::string Inspect(const std::string& id, const std::string& format) {
    return Trim(docker().Docker({"inspect", "-f", format, id}).out);
  }
  int Wait(const std::string& id) {
    auto r = docker().Docker({"wait", id}, CommandOptions().WithTimeout(rc().op_timeout()));
    EXPECT_TRUE(r.ok()) << r.Describe();
    return r.ok() ? std::stoi(Trim(r.out)) : -1;
  }
  // The processes of this runtime still running for the engine: uvm-runc
  // monitors, host agents, QEMU (dockerd, containerd and their shims are the engine's).
  std::vector<std::string> RuntimeLeftovers(const std::string& id) {
    std::vector<std::string> left;
    for (pid_t pid : AllPids()) {
      auto args = ProcessArgs(pid);
      if (args.empty()) continue;
      auto exe = ProcessExeName(pid).value_or("");
      std::string joined;
      for (const auto& a : args) joined += a + " ";
      const bool ours = exe == "uvm-runc" || exe == "uvm-agent" || exe.starts_with("qemu-system");
      if (ours && (joined.find(id) != std::string::npos || joined.find(docker().dir().string()) != std::string::npos))
        left.push_back(std::to_string(pid) + ": " + joined);
    }
    for (const auto& runtime : {"runtime-uvm-process", "runtime-uvm-hyperv"}) {
      auto dir = docker().exec_root() / runtime / "moby" / id;
      if (fs::exists(dir)) left.push_back("state dir " + dir.string());
    }
    for (const auto& m : MountsUnder(docker().exec_root()))
      if (m.find(id) != std::string::npos && m.find("/mounts/shm") == std::string::npos) left.push_back("mount " + m);
    for (const auto& cg : {"/sys/fs/cgroup/memory/uvmshim/runc-", "/sys/fs/cgroup/pids/uvmshim/runc-",
                           "/sys/fs/cgroup/unified/uvmshim/runc-", "/sys/fs/cgroup/uvmshim/runc-"})
      if (fs::exists(std::string(cg) + id)) left.push_back(std::string("cgroup ") + cg + id);
    return left;
  }
  void ExpectNothingLeft(const std::string& id) {
    std::vector<std::string> left;
    EXPECT_TRUE(WaitFor([&] { return (left = RuntimeLeftovers(id)).empty(); }, 30s))
        << "left behind:\n" << [&] { std::string s; for (auto& l : left) s += l + "\n"; return s; }();
  }
};

TEST_P(DockerRun, RunRemoveShowsTheKernel) {
  auto r = Run({"--rm"}, {"uname", "-r"});
  ASSERT_TRUE(r.ok()) << r.Describe() << docker().LogTail();
  utsname host{};
  ::uname(&host);
  if (rc().is_hyperv())
    EXPECT_NE(Trim(r.out), host.release) << "hyperv must show the guest kernel";
  else
    EXPECT_EQ(Trim(r.out), host.release);
}

TEST_P(DockerRun, ExitCodes) {
  auto r = Run({"--rm"}, {"sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  const std::string killed = StartDetached({"sleep", "1000"});
  ASSERT_FALSE(killed.empty());
  EXPECT_TRUE(docker().Docker({"kill", killed}).ok());
  EXPECT_EQ(Wait(killed), 137);
  const std::string trapped = StartDetached({"sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.2; done"});
  ASSERT_FALSE(trapped.empty());
  ASSERT_TRUE(WaitFor([&] { return Inspect(trapped, "{{.State.Status}}") == "running"; }, rc().op_timeout()));
  auto stop = docker().Docker({"stop", "-t", "60", trapped}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(stop.ok()) << stop.Describe();
  EXPECT_EQ(Wait(trapped), 42);
  EXPECT_EQ(Inspect(trapped, "{{.State.ExitCode}}"), "42");
  EXPECT_TRUE(docker().Docker({"rm", "-f", killed, trapped}, CommandOptions().WithTimeout(rc().op_timeout())).ok());
  ExpectNothingLeft(killed);
  ExpectNothingLeft(trapped);
}

TEST_P(DockerRun, StdinEnvWorkdirUser) {
  auto r = Run({"--rm", "-i"}, {"sh", "-c", "cat; echo done"}, CommandOptions().WithStdin("hello\nworld\n"));
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "hello\nworld\ndone\n");
  auto e = Run({"--rm", "-e", "FOO=bar baz", "-w", "/tmp", "-u", "65534:65534"},
               {"sh", "-c", "echo \"$FOO\"; pwd; id -u; id -g"});
  EXPECT_TRUE(e.ok()) << e.Describe();
  EXPECT_EQ(e.out, "bar baz\n/tmp\n65534\n65534\n");
}

TEST_P(DockerRun, TerminalWithT) {
  auto r = Run({"--rm", "-t"}, {"sh", "-c", "tty; test -t 0 && echo interactive"}, CommandOptions().WithPty());
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("interactive"), std::string::npos) << r.out;
}

TEST_P(DockerRun, VolumeWritesAreVisibleOnTheHost) {
  TempDir volume("uvmshim-dk-vol");
  auto r = Run({"--rm", "-v", volume.path().string() + ":/data"}, {"sh", "-c", "echo written > /data/f; cat /data/f"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  std::ifstream in(volume.path() / "f");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "written\n");
}

TEST_P(DockerRun, ExecLogsPsState) {
  const std::string id = StartDetached({"sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 1000"});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return Inspect(id, "{{.State.Status}}") == "running"; }, rc().op_timeout()));
  auto ps = docker().Docker({"ps", "--filter", "id=" + id, "--format", "{{.State}}"});
  EXPECT_EQ(Trim(ps.out), "running") << ps.Describe();
  auto exec = docker().Docker({"exec", id, "sh", "-c", "echo in-exec; exit 3"},
                              CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_EQ(exec.exit_code, 3) << exec.Describe();
  EXPECT_EQ(exec.out, "in-exec\n");
  auto exec_in = docker().Docker({"exec", "-i", id, "cat"},
                                 CommandOptions().WithStdin("via exec\n").WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(exec_in.ok()) << exec_in.Describe();
  EXPECT_EQ(exec_in.out, "via exec\n");
  EXPECT_TRUE(WaitFor([&] { return docker().Docker({"logs", id}).out == "to-stdout\n"; }, 10s));
  auto logs = docker().Docker({"logs", id});
  EXPECT_EQ(logs.out, "to-stdout\n");
  EXPECT_EQ(logs.err, "to-stderr\n");
  EXPECT_TRUE(docker().Docker({"rm", "-f", id}, CommandOptions().WithTimeout(rc().op_timeout())).ok());
  EXPECT_TRUE(Trim(docker().Docker({"ps", "-aq", "--filter", "id=" + id}).out).empty());
  ExpectNothingLeft(id);
}

TEST_P(DockerRun, SixteenMebibytesOfStdoutIntact) {
  constexpr std::size_t kBytes = 16u << 20;
  auto r = Run({"--rm"}, {"sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 16777216"},
               CommandOptions().WithTimeout(rc().op_timeout() * 2));
  ASSERT_TRUE(r.ok()) << r.exit_code << " " << r.err;
  ASSERT_EQ(r.out.size(), kBytes);
  std::string expected;
  expected.reserve(kBytes);
  while (expected.size() < kBytes) expected += "0123456789abcdefghijklmnopqrstuvwxyz\n";
  expected.resize(kBytes);
  EXPECT_TRUE(r.out == expected) << "stdout differs from what the container wrote";
}

// uvm-runc: State.Pid is the monitor; runc (the control): the container's init.
TEST_P(DockerRun, NothingLeftAfterTheMonitorIsKilled) {
  const std::string id = StartDetached({"sleep", "1000"});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return Inspect(id, "{{.State.Status}}") == "running"; }, rc().op_timeout()));
  const pid_t monitor = std::stoi(Inspect(id, "{{.State.Pid}}"));
  ASSERT_GT(monitor, 0);
  if (rc().is_uvm()) {
    EXPECT_EQ(ProcessExeName(monitor).value_or(""), "uvm-runc");
  }
  ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  EXPECT_EQ(Wait(id), 137);
  auto rm = docker().Docker({"rm", id}, CommandOptions().WithTimeout(rc().op_timeout()));
  EXPECT_TRUE(rm.ok()) << rm.Describe() << docker().LogTail();
  ExpectNothingLeft(id);
}

INSTANTIATE_TEST_SUITE_P(Runtimes, DockerRun, ::testing::ValuesIn(AllEngineCases()), EngineCaseName);

}  // namespace
}  // namespace uvmshim::e2e
