// Containers and execs through a real uvm-agent: output, exit codes, signals,
// identity, namespaces, stats, delete, shutdown.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/agent/integration_fixture.h"

namespace uvmshim::agent::testing {
namespace {

using Basic = AgentIntegrationTest;

TEST_F(Basic, VersionAndPing) {
  grpc::ClientContext context;
  pb::VersionResponse version;
  ASSERT_TRUE(stub().Version(&context, pb::VersionRequest(), &version).ok());
  EXPECT_EQ(version.api_version(), 1u);
  EXPECT_FALSE(version.agent_version().empty());
  EXPECT_FALSE(version.kernel_release().empty());
  EXPECT_FALSE(version.in_utility_vm());
}

TEST_F(Basic, SocketAndDirectoryModes) {
  struct stat st {};
  ASSERT_EQ(stat(agent().socket_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((agent().dir() + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(Basic, OutputAndExitCode) {
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "echo hello; echo oops >&2; exit 3"});
  EXPECT_EQ(r.exit_status, 3u);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "oops\n");
}

TEST_F(Basic, MissingCommandExits127WithMessage) {
  auto r = RunContainer(agent(), "c1", {"nosuch"});
  EXPECT_EQ(r.exit_status, 127u);
  EXPECT_EQ(r.err, "uvm-agent: exec \"nosuch\": No such file or directory\n");
  StartSleeper(agent(), "c2");
  auto e = RunExec(agent(), "c2", "e1", {"/bin/nosuch", "x"});
  EXPECT_EQ(e.exit_status, 127u);
  EXPECT_EQ(e.err, "uvm-agent: exec \"/bin/nosuch\": No such file or directory\n");
  DeleteContainer(agent(), "c2");
}

TEST_F(Basic, NotExecutableExits126) {
  auto r = RunContainer(agent(), "c1", {"/etc/passwd"});
  EXPECT_EQ(r.exit_status, 126u);
  EXPECT_NE(r.err.find("uvm-agent: exec \"/etc/passwd\": Permission denied"), std::string::npos) << r.err;
}

TEST_F(Basic, InitIsPid1AndSeesOnlyItsProcesses) {
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"});
  EXPECT_EQ(r.exit_status, 0u);
  ASSERT_EQ(r.out.substr(0, 2), "1\n") << r.err;
  EXPECT_LE(std::stoi(r.out.substr(2)), 3);  // sh, ls, grep: nothing of the host
}

TEST_F(Basic, EnvCwdUserHostname) {
  SpecOptions options;
  options.args = {"sh", "-c", "echo $FOO; pwd; id -u; id -g; hostname"};
  options.env.push_back("FOO=bar baz");
  options.cwd = "/tmp";
  options.uid = 1000;
  options.gid = 1000;
  options.hostname = "box1";
  auto r = RunContainer(agent(), "c1", options);
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  EXPECT_EQ(r.out, "bar baz\n/tmp\n1000\n1000\nbox1\n");
}

TEST_F(Basic, ReadonlyRootAndWritableTmp) {
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "touch /x 2>/dev/null && echo wrote; touch /tmp/y && echo tmp"});
  EXPECT_EQ(r.out, "tmp\n") << r.err;
}

TEST_F(Basic, DevicesAndMounts) {
  auto r = RunContainer(agent(), "c1",
                        {"sh", "-c",
                         "echo x > /dev/null && head -c 4 /dev/zero | wc -c && ls /dev/pts/ptmx && "
                         "readlink /dev/ptmx && test -d /dev/shm && test -d /dev/mqueue && "
                         "test -e /sys/kernel && cat /proc/kcore | wc -c"});
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  EXPECT_EQ(r.out, "4\n/dev/pts/ptmx\npts/ptmx\n0\n");
}

TEST_F(Basic, NoAgentFdLeaksIntoTheContainer) {
  // Only 0, 1, 2 and the directory ls itself opens.
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "ls /proc/self/fd | wc -l"});
  EXPECT_EQ(r.out, "4\n") << r.err;
  StartSleeper(agent(), "c2");
  auto e = RunExec(agent(), "c2", "e1", {"sh", "-c", "ls /proc/self/fd | wc -l"});
  EXPECT_EQ(e.out, "4\n") << e.err;
  DeleteContainer(agent(), "c2");
}

TEST_F(Basic, CapabilitiesFollowTheSpec) {
  // MakeSpec grants 14 capabilities (bounding = effective = permitted):
  // CAP_CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) FSETID(4) KILL(5) SETGID(6)
  // SETUID(7) SETPCAP(8) NET_BIND_SERVICE(10) NET_RAW(13) SYS_CHROOT(18)
  // MKNOD(27) AUDIT_WRITE(29) SETFCAP(31) = 0xa80425fb.
  auto r = RunContainer(agent(), "c1", {"sh", "-c", "grep -E '^Cap(Bnd|Eff|Prm|Inh)' /proc/self/status; "
                                                   "grep NoNewPrivs /proc/self/status"});
  EXPECT_EQ(r.out,
            "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n"
            "CapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n")
      << r.err;
}

TEST_F(Basic, ContainerCannotSeeTheAgentSocket) {
  auto r = RunContainer(agent(), "c1",
                        {"sh", "-c", "ls " + agent().socket_path() + " || echo absent; ls " + agent().dir() +
                                         " 2>/dev/null || echo nodir"});
  EXPECT_EQ(r.out, "absent\nnodir\n");
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos);
}

TEST_F(Basic, NetworkNamespaceHasOnlyLoopbackUp) {
  SpecOptions options;
  options.network_namespace = true;
  options.args = {"sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; ping -c 1 -W 1 127.0.0.1 >/dev/null && echo lo-up"};
  auto r = RunContainer(agent(), "c1", options);
  EXPECT_EQ(r.out, "lo\nlo-up\n") << r.err;
}

TEST_F(Basic, SigkillOnInitGives137) {
  StartSleeper(agent(), "c1");
  grpc::ClientContext context;
  pb::SignalProcessRequest request;
  request.set_container_id("c1");
  request.set_signal(SIGKILL);
  pb::SignalProcessResponse response;
  ASSERT_TRUE(stub().SignalProcess(&context, request, &response).ok());
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "", &wait).ok());
  EXPECT_EQ(wait.exit_status(), 137u);
  EXPECT_GT(wait.exited_at_unix_nano(), 0);
  DeleteContainer(agent(), "c1", false);
}

TEST_F(Basic, SigtermOnExecGives143) {
  StartSleeper(agent(), "c1");
  {
    grpc::ClientContext context;
    pb::ExecProcessRequest request;
    request.set_container_id("c1");
    request.set_exec_id("e1");
    request.set_process_json(MakeProcessJson({"sleep", "1000"}));
    pb::ExecProcessResponse response;
    ASSERT_TRUE(stub().ExecProcess(&context, request, &response).ok());
    EXPECT_GT(response.pid(), 0u);
  }
  grpc::ClientContext context;
  pb::SignalProcessRequest request;
  request.set_container_id("c1");
  request.set_exec_id("e1");
  request.set_signal(SIGTERM);
  pb::SignalProcessResponse response;
  ASSERT_TRUE(stub().SignalProcess(&context, request, &response).ok());
  pb::WaitProcessResponse wait;
  ASSERT_TRUE(Wait(agent(), "c1", "e1", &wait).ok());
  EXPECT_EQ(wait.exit_status(), 143u);
  DeleteContainer(agent(), "c1");
}

TEST_F(Basic, ExecRunsInTheContainerAsTheGivenUser) {
  StartSleeper(agent(), "c1");
  auto r = RunExec(agent(), "c1", "e1", {"sh", "-c", "id -u; hostname; ls /proc | grep -c '^[0-9]'"}, 1000);
  EXPECT_EQ(r.exit_status, 0u) << r.err;
  ASSERT_EQ(r.out.substr(0, 5), "1000\n");
  auto count = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  EXPECT_LE(std::stoi(count), 4);  // sleep, sh, ls, grep
  auto pid = RunExec(agent(), "c1", "e2", {"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"});
  EXPECT_EQ(pid.out, "sleep 100000 ");
  DeleteContainer(agent(), "c1");
}

TEST_F(Basic, HundredConcurrentExecs) {
  StartSleeper(agent(), "c1");
  constexpr int kExecs = 100;
  std::vector<std::thread> threads;
  std::vector<RunResult> results(kExecs);
  for (int i = 0; i < kExecs; ++i)
    threads.emplace_back([&, i] {
      results[i] = RunExec(agent(), "c1", "e" + std::to_string(i), {"sh", "-c", "echo out-" + std::to_string(i)});
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kExecs; ++i) {
    EXPECT_EQ(results[i].exit_status, 0u) << i;
    EXPECT_EQ(results[i].out, "out-" + std::to_string(i) + "\n");
  }
  DeleteContainer(agent(), "c1");
}

size_t CountFds(pid_t pid) {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
    ++count;
  return count;
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST_F(Basic, ManyExecsDoNotGrowTheAgent) {
  StartSleeper(agent(), "c1");
  for (int i = 0; i < 50; ++i) RunExec(agent(), "c1", "warm" + std::to_string(i), {"true"});
  size_t fds_before = CountFds(agent().pid());
  long rss_before = RssKiB(agent().pid());
  for (int i = 0; i < 600; ++i) {
    auto r = RunExec(agent(), "c1", "e" + std::to_string(i), {"echo", "x"});
    ASSERT_EQ(r.out, "x\n");
  }
  size_t fds_after = CountFds(agent().pid());
  long rss_after = RssKiB(agent().pid());
  EXPECT_LE(fds_after, fds_before + 8) << fds_before << " -> " << fds_after;
  EXPECT_LE(rss_after, rss_before + 16 * 1024) << rss_before << " KiB -> " << rss_after << " KiB";
  DeleteContainer(agent(), "c1");
}

TEST_F(Basic, StatsAndListProcesses) {
  StartSleeper(agent(), "c1");
  {
    grpc::ClientContext context;
    pb::ExecProcessRequest request;
    request.set_container_id("c1");
    request.set_exec_id("busy");
    request.set_process_json(MakeProcessJson({"sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000"}));
    pb::ExecProcessResponse response;
    ASSERT_TRUE(stub().ExecProcess(&context, request, &response).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  grpc::ClientContext context;
  pb::StatsRequest request;
  request.set_container_id("c1");
  pb::StatsResponse stats;
  ASSERT_TRUE(stub().Stats(&context, request, &stats).ok());
  EXPECT_GE(stats.pids_current(), 2u);
  EXPECT_GT(stats.cpu_usage_ns(), 0u);
  EXPECT_GT(stats.memory_usage_bytes(), 0u);
  grpc::ClientContext list_context;
  pb::ListProcessesRequest list_request;
  list_request.set_container_id("c1");
  pb::ListProcessesResponse list;
  ASSERT_TRUE(stub().ListProcesses(&list_context, list_request, &list).ok());
  bool saw_init = false, saw_exec = false;
  for (const auto& p : list.processes()) {
    if (p.exec_id().empty() && p.command() == "sleep") saw_init = true;
    if (p.exec_id() == "busy") saw_exec = true;
  }
  EXPECT_TRUE(saw_init);
  EXPECT_TRUE(saw_exec);
  DeleteContainer(agent(), "c1");
}

TEST_F(Basic, MemoryAndPidsLimitsApply) {
  SpecOptions options;
  options.args = {"sleep", "1000"};
  auto spec = nlohmann::json::parse(MakeSpec(options));
  spec["linux"]["resources"] = {{"memory", {{"limit", 64 << 20}}}, {"pids", {{"limit", 20}}}};
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id("c1");
  request.set_spec_json(spec.dump());
  pb::CreateContainerResponse response;
  ASSERT_TRUE(stub().CreateContainer(&context, request, &response).ok());
  grpc::ClientContext stats_context;
  pb::StatsRequest stats_request;
  stats_request.set_container_id("c1");
  pb::StatsResponse stats;
  ASSERT_TRUE(stub().Stats(&stats_context, stats_request, &stats).ok());
  EXPECT_EQ(stats.memory_limit_bytes(), 64u << 20);
  EXPECT_EQ(stats.pids_limit(), 20u);
  DeleteContainer(agent(), "c1");
}

TEST_F(Basic, DeleteOfARunningContainerNeedsForce) {
  StartSleeper(agent(), "c1");
  grpc::ClientContext context;
  pb::DeleteContainerRequest request;
  request.set_container_id("c1");
  pb::DeleteContainerResponse response;
  auto status = stub().DeleteContainer(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  DeleteContainer(agent(), "c1", true);
  grpc::ClientContext again;
  pb::StatsRequest stats;
  stats.set_container_id("c1");
  pb::StatsResponse out;
  EXPECT_EQ(stub().Stats(&again, stats, &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(Basic, DeleteOfACreatedContainerEndsItsInit) {
  SpecOptions options;
  options.args = {"true"};
  grpc::ClientContext context;
  pb::CreateContainerRequest request;
  request.set_container_id("c1");
  request.set_spec_json(MakeSpec(options));
  pb::CreateContainerResponse response;
  ASSERT_TRUE(stub().CreateContainer(&context, request, &response).ok());
  EXPECT_EQ(agent().Children().size(), 1u);
  DeleteContainer(agent(), "c1", false);
}

TEST_F(Basic, ShutdownEndsTheAgentAndItsContainers) {
  StartSleeper(agent(), "c1");
  grpc::ClientContext context;
  pb::ShutdownResponse response;
  ASSERT_TRUE(stub().Shutdown(&context, pb::ShutdownRequest(), &response).ok());
  auto status = agent().WaitExit(std::chrono::seconds(5));
  ASSERT_TRUE(status.has_value()) << "the agent did not exit after Shutdown";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  struct stat st {};
  for (const char* root : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"}) {
    std::string parent = std::string(root) + "/" + agent().cgroup_parent();
    EXPECT_NE(stat(parent.c_str(), &st), 0) << parent << " left behind";
  }
}

}  // namespace
}  // namespace uvmshim::agent::testing
