// The CRI suite: what kubelet does with a pod, through containerd's CRI plugin, with the SAME
// expectations for the runc handler (the reference), uvm-process and uvm-hyperv. Each test owns
// a private containerd (CriEnv) and ends with a check that nothing of the pod is left.
#include <nlohmann/json.hpp>

#include "cri_pod_fixture.h"

namespace uvmshim::cri {
namespace {

// One pod, two app containers, everything kubelet relies on, then kubelet's teardown.
TEST_P(CriPodTest, PodWithTwoContainers) {
  const fs::path volume = env().work_dir() / "volume";
  const fs::path config_file = env().work_dir() / "app.conf";
  fs::create_directories(volume);
  std::ofstream(volume / "seed.txt") << "from-host\n";
  std::ofstream(config_file) << "key=value\n";

  PodOptions pod_options;
  pod_options.name = "pod-full";
  pod_options.hostname = "cri-pod";
  pod_options.dns_servers = {"10.0.0.10"};
  pod_options.dns_searches = {"uvmshim.test"};
  pod_options.dns_options = {"ndots:2"};
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);

  // Pod ready, on our handler, with its loopback-only network.
  auto status = cri().PodSandboxStatus(pod, true);
  EXPECT_EQ(status.status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(status.status().runtime_handler(), handler());
  EXPECT_EQ(status.status().network().ip(), "127.0.0.1");
  auto netns = PodNetnsPath(status);
  ASSERT_TRUE(netns.has_value()) << status.info().at("info");

  auto c1_options = IdleContainer("c1", {BindMount(volume, "/data", false)});
  auto c2_options = IdleContainer("c2", {BindMount(volume, "/data-ro", true), BindMount(config_file, "/etc/app.conf", true)});
  const std::string c1 = StartContainer(pod, pod_config, c1_options);
  const std::string c2 = StartContainer(pod, pod_config, c2_options);

  // Both running.
  for (const auto& id : {c1, c2}) EXPECT_EQ(cri().ContainerStatus(id).status().state(), v1::CONTAINER_RUNNING) << id;
  auto listed = cri().ListContainers(pod);
  EXPECT_EQ(listed.size(), 2u);
  for (const auto& c : listed) EXPECT_EQ(c.state(), v1::CONTAINER_RUNNING) << c.id();

  if (IsHypervHandler(handler())) {
    EXPECT_EQ(QemuPidsUnder(env().containerd().dir()).size(), 1u) << "one UVM per pod";
    EXPECT_EQ(PidsNamedUnder(env().containerd().dir(), "virtiofsd").size(), 1u) << "one share per UVM";
  }

  // Output in the CRI log files, one "<time> <stream> F <text>" line per line written.
  for (const std::string name : {"c1", "c2"}) {
    const fs::path log = fs::path(pod_config.log_directory()) / (name + ".log");
    EXPECT_EQ(cri().ContainerStatus(name == "c1" ? c1 : c2).status().log_path(), log.string());
    bool found = e2e::WaitFor([&] {
      int seen = 0;
      for (const auto& l : ReadCriLog(log)) {
        if (l.stream == "stdout" && l.tag == "F" && l.text == "hello from " + name) ++seen;
        if (l.stream == "stderr" && l.tag == "F" && l.text == "oops from " + name) ++seen;
      }
      return seen == 2;
    }, 30s);
    EXPECT_TRUE(found) << log << ":\n" << ReadFile(log);
    for (const auto& l : ReadCriLog(log)) EXPECT_NE(l.time.find('T'), std::string::npos) << "time of: " << l.text;
  }

  // ExecSync: exit codes, stdout and stderr apart.
  auto r = Sh(c1, "echo to-out; echo to-err >&2; exit 3");
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_EQ(r.stdout(), "to-out\n");
  EXPECT_EQ(r.stderr(), "to-err\n");
  EXPECT_EQ(cri().ExecSync(c2, {"true"}, 30).exit_code(), 0);
  EXPECT_EQ(cri().ExecSync(c2, {"false"}, 30).exit_code(), 1);

  // A directory volume (read-write in c1, read-only in c2) and a read-only single file.
  EXPECT_EQ(ShOut(c1, "cat /data/seed.txt"), "from-host");
  ShOut(c1, "echo written-by-c1 > /data/from-c1");
  EXPECT_EQ(ReadFile(volume / "from-c1"), "written-by-c1\n");
  EXPECT_EQ(ShOut(c2, "cat /data-ro/from-c1"), "written-by-c1");
  EXPECT_NE(Sh(c2, "echo no > /data-ro/from-c2").exit_code(), 0);
  EXPECT_FALSE(fs::exists(volume / "from-c2"));
  EXPECT_EQ(ShOut(c2, "cat /etc/app.conf"), "key=value");
  EXPECT_NE(Sh(c2, "echo changed >> /etc/app.conf").exit_code(), 0);
  EXPECT_EQ(ReadFile(config_file), "key=value\n");

  // /etc/resolv.conf from the pod's DNSConfig, /etc/hosts, the pod's hostname.
  for (const auto& id : {c1, c2}) {
    auto resolv = ShOut(id, "cat /etc/resolv.conf");
    EXPECT_NE(resolv.find("nameserver 10.0.0.10"), std::string::npos) << resolv;
    EXPECT_NE(resolv.find("search uvmshim.test"), std::string::npos) << resolv;
    EXPECT_NE(resolv.find("options ndots:2"), std::string::npos) << resolv;
    auto hosts = ShOut(id, "cat /etc/hosts");
    EXPECT_NE(hosts.find("localhost"), std::string::npos) << hosts;
    EXPECT_EQ(ShOut(id, "hostname"), "cri-pod");
  }

  // /dev/shm is the pod's, shared by both containers.
  ShOut(c1, "echo shm-from-c1 > /dev/shm/pod-shared");
  EXPECT_EQ(ShOut(c2, "cat /dev/shm/pod-shared"), "shm-from-c1");

  // One network, IPC and UTS namespace for the pod; PID namespaces apart (not shared here).
  for (const char* ns : {"net", "ipc", "uts"}) {
    std::string script = std::string("readlink /proc/self/ns/") + ns;
    EXPECT_EQ(ShOut(c1, script), ShOut(c2, script)) << ns;
  }
  EXPECT_NE(ShOut(c1, "readlink /proc/self/ns/pid"), ShOut(c2, "readlink /proc/self/ns/pid"));
  // The pod network is loopback only (our CNI network): no interface but lo.
  EXPECT_EQ(ShOut(c1, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"), "lo");

  // ContainerStats.
  auto stats = cri().ContainerStats(c1);
  EXPECT_EQ(stats.attributes().id(), c1);
  EXPECT_GT(stats.memory().working_set_bytes().value(), 0u);
  EXPECT_GT(stats.cpu().usage_core_nano_seconds().value(), 0u);

  // UpdateContainerResources: a 64 MiB allocation passes before and is OOM-killed after the
  // limit drops to 48 MiB.
  const std::string alloc = "dd if=/dev/zero of=/dev/null bs=64M count=1";
  EXPECT_EQ(Sh(c1, alloc).exit_code(), 0);
  v1::LinuxContainerResources resources;
  resources.set_memory_limit_in_bytes(48 << 20);
  resources.set_memory_swap_limit_in_bytes(48 << 20);
  resources.set_cpu_period(100000);
  resources.set_cpu_quota(50000);
  resources.set_cpu_shares(512);
  EXPECT_NO_THROW(cri().UpdateContainerResources(c1, resources)) << LogTail();
  auto info = nlohmann::json::parse(cri().ContainerStatus(c1, true).info().at("info"), nullptr, false);
  auto limit = info.is_discarded() ? nlohmann::json() : info["runtimeSpec"]["linux"]["resources"]["memory"]["limit"];
  EXPECT_EQ(limit.is_number() ? limit.get<long>() : -1L, 48L << 20) << "memory limit in the spec containerd keeps";
  EXPECT_EQ(Sh(c1, alloc).exit_code(), 137) << "the updated memory limit is not enforced";
  EXPECT_EQ(cri().ContainerStatus(c2).status().state(), v1::CONTAINER_RUNNING);

  if (IsHypervHandler(handler())) {
    EXPECT_EQ(QemuPidsUnder(env().containerd().dir()).size(), 1u) << "one UVM per pod";
  }

  StopAndRemoveAll();
  ExpectNothingLeft({*netns});
}

// pid=POD: the containers and the pause process share one PID namespace; the pause process
// (PID 1 there) shares the pod's network, IPC and UTS namespaces with them.
TEST_P(CriPodTest, SharedPidNamespace) {
  PodOptions pod_options;
  pod_options.name = "pod-pid";
  pod_options.share_pid = true;
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);
  auto netns = PodNetnsPath(cri().PodSandboxStatus(pod, true));
  const std::string c1 = StartContainer(pod, pod_config, IdleContainer("c1"));
  const std::string c2 = StartContainer(pod, pod_config, IdleContainer("c2"));

  for (const auto& id : {c1, c2}) {
    EXPECT_EQ(ShOut(id, "tr '\\0' ' ' < /proc/1/cmdline"), "/pause") << id;
    for (const char* ns : {"net", "ipc", "uts", "pid"}) {
      std::string self = ShOut(id, std::string("readlink /proc/self/ns/") + ns);
      EXPECT_EQ(ShOut(id, std::string("readlink /proc/1/ns/") + ns), self) << id << " " << ns;
    }
  }
  // Each container sees the other's processes.
  EXPECT_NE(ShOut(c2, "ps -o args").find("marker-c1"), std::string::npos);
  EXPECT_NE(ShOut(c1, "ps -o args").find("marker-c2"), std::string::npos);

  StopAndRemoveAll();
  std::vector<std::string> netns_paths;
  if (netns) netns_paths.push_back(*netns);
  ExpectNothingLeft(netns_paths);
}

// A container that allocates past its memory limit is OOM-killed: exit 137, reason OOMKilled.
TEST_P(CriPodTest, OomKill) {
  PodOptions pod_options;
  pod_options.name = "pod-oom";
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);
  auto netns = PodNetnsPath(cri().PodSandboxStatus(pod, true));
  ContainerOptions options;
  options.name = "hog";
  // The allocator is the container's main process (exec), as in a real OOM-killed pod.
  options.command = {"sh", "-c", "echo start; exec dd if=/dev/zero of=/dev/null bs=64M count=1"};
  options.memory_limit_bytes = 32 << 20;
  const std::string hog = StartContainer(pod, pod_config, options);

  ASSERT_TRUE(WaitForExit(hog, 120s)) << LogTail();
  auto status = cri().ContainerStatus(hog).status();
  EXPECT_EQ(status.exit_code(), 137);
  EXPECT_EQ(status.reason(), "OOMKilled") << status.message();
  const auto log = ReadFile(fs::path(pod_config.log_directory()) / "hog.log");
  EXPECT_NE(log.find("stdout F start"), std::string::npos) << log;
  EXPECT_EQ(log.find("records out"), std::string::npos) << "the allocation completed:\n" << log;

  StopAndRemoveAll();
  std::vector<std::string> netns_paths;
  if (netns) netns_paths.push_back(*netns);
  ExpectNothingLeft(netns_paths);
}

// Containers come and go in a running pod (kubectl debug, restarts): removing one leaves the
// others and the pod untouched, and a container created later joins the same pod.
TEST_P(CriPodTest, ContainersComeAndGoInRunningPod) {
  PodOptions pod_options;
  pod_options.name = "pod-churn";
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);
  auto netns = PodNetnsPath(cri().PodSandboxStatus(pod, true));
  const std::string c1 = StartContainer(pod, pod_config, IdleContainer("c1"));
  const std::string c2 = StartContainer(pod, pod_config, IdleContainer("c2"));
  const std::string net = ShOut(c2, "readlink /proc/self/ns/net");

  cri().StopContainer(c1, 10);
  EXPECT_EQ(cri().ContainerStatus(c1).status().state(), v1::CONTAINER_EXITED);
  cri().RemoveContainer(c1);
  containers_.erase(containers_.begin());
  EXPECT_EQ(cri().ListContainers(pod).size(), 1u);
  EXPECT_EQ(cri().PodSandboxStatus(pod).status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(cri().ContainerStatus(c2).status().state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(ShOut(c2, "echo still here"), "still here");
  EXPECT_FALSE(fs::exists(env().TaskBundleDir(c1)));

  const std::string c3 = StartContainer(pod, pod_config, IdleContainer("c3"));
  EXPECT_EQ(ShOut(c3, "readlink /proc/self/ns/net"), net);
  EXPECT_EQ(ShOut(c3, "hostname"), ShOut(c2, "hostname"));
  if (IsHypervHandler(handler())) {
    EXPECT_EQ(QemuPidsUnder(env().containerd().dir()).size(), 1u) << "one UVM per pod";
  }

  StopAndRemoveAll();
  std::vector<std::string> netns_paths;
  if (netns) netns_paths.push_back(*netns);
  ExpectNothingLeft(netns_paths);
}

// containerd crashes and comes back (SIGKILL + start on the same state): the pod and its
// container are recovered through the running shim and stay usable; teardown still cleans up.
TEST_P(CriPodTest, PodSurvivesContainerdRestart) {
  PodOptions pod_options;
  pod_options.name = "pod-restart";
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);
  auto netns = PodNetnsPath(cri().PodSandboxStatus(pod, true));
  const std::string c1 = StartContainer(pod, pod_config, IdleContainer("c1"));
  ASSERT_EQ(ShOut(c1, "echo before"), "before");

  env().containerd().Restart();
  // The client reconnects by itself (wait_for_ready); CRI reloads its state from containerd.
  EXPECT_TRUE(e2e::WaitFor([&] {
    try {
      return cri().PodSandboxStatus(pod).status().state() == v1::SANDBOX_READY;
    } catch (const CriError&) {
      return false;
    }
  }, 60s)) << LogTail();
  EXPECT_EQ(cri().ContainerStatus(c1).status().state(), v1::CONTAINER_RUNNING);
  EXPECT_EQ(ShOut(c1, "echo after"), "after");

  StopAndRemoveAll();
  std::vector<std::string> netns_paths;
  if (netns) netns_paths.push_back(*netns);
  ExpectNothingLeft(netns_paths);
}

INSTANTIATE_TEST_SUITE_P(Handlers, CriPodTest,
                         ::testing::Values(kRuncHandler, kUvmProcessHandler, kUvmHypervHandler),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (auto& ch : name) if (ch == '-') ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace uvmshim::cri
