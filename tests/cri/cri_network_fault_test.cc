// Faults of the pod network (issue #11): a UVM killed with a connection open, a pod network
// namespace deleted under a running pod. Each ends with the exit reported and nothing left.
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include "cri_network_fixture.h"

namespace uvmshim::cri {
namespace {

class CriNetworkFaultTest : public CriNetworkTest {
 protected:
  // A command in the pod's network namespace (entered by path, like the shim does).
  e2e::CommandResult InPodNetns(const std::string& netns_path, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"nsenter", "--net=" + netns_path});
    return e2e::RunCommand(argv, e2e::CommandOptions().WithTimeout(std::chrono::seconds(30)));
  }

  std::string StartListener(const std::string& pod, const v1::PodSandboxConfig& pod_config) {
    ContainerOptions listener;
    listener.name = "listener";
    // Holds every connection open; keeps listening after one ends.
    listener.command = {"sh", "-c", "while true; do nc -l -p 9000 >/dev/null; done"};
    return StartContainer(pod, pod_config, listener);
  }
};

// kill -9 of QEMU while a TCP connection from the bridge side is open: the container's exit is
// reported, the tap (the host side of the VM's link) is gone with QEMU and the redirect filters
// on the pod's veth are removed at once (not left steering frames to a missing tap until the pod
// is stopped); then the pod stops and is removed with nothing left.
class CriVmLinkFaultTest : public CriNetworkFaultTest {};

TEST_P(CriVmLinkFaultTest, QemuKilledWithAConnectionOpenEndsTaskAndLink) {
  const auto pod = RunNetworkPod("victim");
  const std::string container = StartListener(pod.id, pod.config);

  // The host side of the link while the VM runs: our tap and the ingress redirect on eth0.
  EXPECT_NE(InPodNetns(pod.netns_path, {"ip", "-o", "link", "show"}).out.find("tap0_uvm"), std::string::npos);
  EXPECT_NE(InPodNetns(pod.netns_path, {"tc", "qdisc", "show", "dev", "eth0"}).out.find("ingress"), std::string::npos);

  // A client in the test's namespace connects and holds the connection.
  e2e::TempDir tmp("uvmshim-netfault");
  e2e::BackgroundCommand client(
      {"ip", "netns", "exec", netns_->name(), "python3", "-c",
       "import socket, sys, time\n"
       "for _ in range(240):\n"
       "    try:\n"
       "        s = socket.create_connection((sys.argv[1], 9000), timeout=5); break\n"
       "    except OSError:\n"
       "        time.sleep(0.5)\n"
       "print('connected', flush=True)\n"
       "s.settimeout(None)\n"
       "s.recv(1)\n",
       pod.ip},
      tmp.path() / "client.out");
  ASSERT_TRUE(e2e::WaitFor([&] { return client.Output().find("connected") != std::string::npos; }, 150s))
      << client.Output() << LogTail();

  auto qemus = QemuPidsUnder(env().containerd().dir());
  ASSERT_EQ(qemus.size(), 1u);
  ASSERT_EQ(::kill(qemus[0], SIGKILL), 0);

  EXPECT_TRUE(WaitForExit(container, 120s)) << "container exit not reported" << LogTail();
  EXPECT_TRUE(e2e::WaitFor([&] {
    return InPodNetns(pod.netns_path, {"ip", "-o", "link", "show"}).out.find("tap0_uvm") == std::string::npos;
  }, 30s)) << "tap left in the pod's namespace";
  EXPECT_TRUE(e2e::WaitFor([&] {
    return InPodNetns(pod.netns_path, {"tc", "qdisc", "show", "dev", "eth0"}).out.find("ingress") == std::string::npos;
  }, 30s)) << "redirect filters left on the pod's veth" << LogTail();

  client.Kill(SIGKILL);
  client.Wait(10s);
  StopAndRemoveAll();
  ExpectNothingLeft({pod.netns_path});
  const std::string links = netns_->Links();
  EXPECT_EQ(links.find("veth"), std::string::npos) << links;
}

// The pod's network namespace deleted (`ip netns delete`: its bind mount removed) while the pod
// runs: the namespace lives on as long as the pod holds it, so the pod keeps serving; the shim
// reports the deletion when the sandbox ends, and stop and removal leave nothing behind.
TEST_P(CriNetworkFaultTest, NetnsDeletedUnderARunningPodIsReportedNotCrashedOn) {
  const auto pod = RunNetworkPod("orphan");

  ContainerOptions web;
  web.name = "web";
  web.command = {"sh", "-c", "mkdir -p /www && echo still-here >/www/index.html && exec httpd -f -p 8080 -h /www"};
  const std::string container = StartContainer(pod.id, pod.config, web);
  ASSERT_EQ(Trim(FetchFromBridge("http://" + pod.ip + ":8080/index.html")), "still-here") << LogTail();

  // What `ip netns delete` does: detach the bind mount, remove the file.
  ASSERT_EQ(::umount2(pod.netns_path.c_str(), MNT_DETACH), 0) << pod.netns_path;
  ASSERT_EQ(::unlink(pod.netns_path.c_str()), 0) << pod.netns_path;

  // Still serving, and the container still answers execs.
  EXPECT_EQ(Trim(FetchFromBridge("http://" + pod.ip + ":8080/index.html", 60s)), "still-here") << LogTail();
  EXPECT_EQ(ShOut(container, "echo alive"), "alive");

  StopAndRemoveAll();
  ExpectNothingLeft({pod.netns_path});
  if (handler() == kUvmHypervHandler) {
    const std::string log = env().containerd().LogTail(400);
    EXPECT_NE(log.find("event=pod_netns_gone"), std::string::npos) << "deletion not reported" << LogTail();
  }
  // The namespace ends with the last holder: its veth pair with it.
  EXPECT_TRUE(e2e::WaitFor([&] { return netns_->Links().find("veth") == std::string::npos; }, 30s))
      << netns_->Links();
}

INSTANTIATE_TEST_SUITE_P(Hyperv, CriVmLinkFaultTest, ::testing::Values(std::string(kUvmHypervHandler)),
                         [](const auto&) { return std::string("uvm_hyperv"); });

INSTANTIATE_TEST_SUITE_P(Handlers, CriNetworkFaultTest,
                         ::testing::Values(std::string(kUvmHypervHandler), std::string(kUvmProcessHandler)),
                         HandlerTestName);

}  // namespace
}  // namespace uvmshim::cri
