// Pod networking on a CNI bridge (issue #11), every handler with the same expectations. Everything
// runs in a network namespace the test creates (containerd, so CNI's bridge and portmap's rules,
// live in it): the pods' addresses and every packet stay there.
#include "cri_network_fixture.h"

namespace uvmshim::cri {
namespace {

// A pod gets its address from CNI, its container shows it on eth0, a web server in it answers
// from the bridge side by pod IP, /etc/resolv.conf has the pod's DNS settings; after removal no
// veth, tap or netns is left in the test's namespace.
TEST_P(CriNetworkTest, PodOnBridgeServesHttpByPodIp) {
  PodOptions pod_options;
  pod_options.name = "web";
  pod_options.dns_servers = {"10.88.7.53"};
  pod_options.dns_searches = {"pods.test"};
  auto pod_config = MakePodConfig(env(), pod_options);
  const std::string pod = RunPod(pod_config);
  const auto status = cri().PodSandboxStatus(pod, true);
  const std::string ip = status.status().network().ip();
  ASSERT_EQ(ip.rfind("10.88.7.", 0), 0u) << "pod IP " << ip << LogTail();
  const auto netns_path = PodNetnsPath(status);
  ASSERT_TRUE(netns_path) << "no pod netns in the sandbox spec";

  ContainerOptions web;
  web.name = "web";
  web.command = {"sh", "-c",
                 "mkdir -p /www && echo served-by-" + handler() + " >/www/index.html && exec httpd -f -p 8080 -h /www"};
  const std::string container = StartContainer(pod, pod_config, web);

  const std::string addresses = ShOut(container, "ip -o addr show eth0");
  EXPECT_NE(addresses.find("inet " + ip + "/24"), std::string::npos) << addresses;
  EXPECT_NE(ShOut(container, "ip route").find("default via 10.88.7.1"), std::string::npos);
  const std::string resolv = ShOut(container, "cat /etc/resolv.conf");
  EXPECT_NE(resolv.find("nameserver 10.88.7.53"), std::string::npos) << resolv;
  EXPECT_NE(resolv.find("search pods.test"), std::string::npos) << resolv;

  EXPECT_EQ(Trim(FetchFromBridge("http://" + ip + ":8080/index.html")), "served-by-" + handler()) << LogTail();
  // The container reaches the bridge's gateway too (the other direction).
  EXPECT_EQ(Sh(container, "ping -c 1 -W 5 10.88.7.1").exit_code(), 0);

  StopAndRemoveAll();
  ExpectNothingLeft({*netns_path});
  const std::string links = netns_->Links();
  EXPECT_EQ(links.find("veth"), std::string::npos) << links;
  EXPECT_EQ(links.find("tap"), std::string::npos) << links;
}

// Two pods of the handler reach each other by pod IP.
TEST_P(CriNetworkTest, PodToPodByIp) {
  std::vector<std::string> ips, containers;
  for (const char* name : {"a", "b"}) {
    PodOptions pod_options;
    pod_options.name = std::string("pod-") + name;
    auto pod_config = MakePodConfig(env(), pod_options);
    const std::string pod = RunPod(pod_config);
    ips.push_back(cri().PodSandboxStatus(pod).status().network().ip());
    ContainerOptions web;
    web.name = name;
    web.command = {"sh", "-c", std::string("mkdir -p /www && echo pod-") + name +
                                   " >/www/index.html && exec httpd -f -p 8080 -h /www"};
    containers.push_back(StartContainer(pod, pod_config, web));
  }
  ASSERT_NE(ips[0], ips[1]);
  auto fetch = [&](const std::string& from, const std::string& ip) {
    std::string body;
    e2e::WaitFor([&] {
      // nc, not wget: the test image's static busybox wget crashes (glibc NSS), as on the host.
      auto r = Sh(from, "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 " + ip + " 8080 | tail -n 1");
      body = Trim(r.stdout());
      return r.exit_code() == 0 && !body.empty();
    }, 120s);
    return body;
  };
  EXPECT_EQ(fetch(containers[0], ips[1]), "pod-b");
  EXPECT_EQ(fetch(containers[1], ips[0]), "pod-a");
  StopAndRemoveAll();
}

INSTANTIATE_TEST_SUITE_P(Handlers, CriNetworkTest,
                         ::testing::Values(std::string(kRuncHandler), std::string(kUvmProcessHandler),
                                           std::string(kUvmHypervHandler)),
                         HandlerTestName);

}  // namespace
}  // namespace uvmshim::cri
