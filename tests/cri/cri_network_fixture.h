// The CNI-bridge fixture of the pod network tests (issue #11): everything runs in a network
// namespace the test creates (containerd, so CNI's bridge and portmap's rules, live in it).
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "cri_pod_fixture.h"

namespace uvmshim::cri {

// `ip netns add` of a unique name; deleted (by name) at the end.
class TestNetns {
 public:
  TestNetns() {
    static std::atomic<int> counter{0};
    name_ = "uvmshim-net-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    auto r = e2e::RunCommand({"ip", "netns", "add", name_});
    if (!r.ok()) throw std::runtime_error("ip netns add: " + r.Describe());
    Run({"ip", "link", "set", "lo", "up"});
  }
  ~TestNetns() { e2e::RunCommand({"ip", "netns", "del", name_}); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // A command inside the namespace.
  e2e::CommandResult Run(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    std::vector<std::string> full{"ip", "netns", "exec", name_};
    full.insert(full.end(), argv.begin(), argv.end());
    return e2e::RunCommand(full, e2e::CommandOptions().WithTimeout(timeout));
  }
  // The interface names in the namespace (ip -o link).
  std::string Links() const {
    auto r = Run({"ip", "-o", "link", "show"});
    return r.out;
  }

 private:
  std::string name_;
};

class CriNetworkTest : public CriPodTest {
 protected:
  void SetUp() override {
    if (auto why = MissingPrerequisite(handler())) GTEST_SKIP() << *why;
    netns_ = std::make_unique<TestNetns>();
    env_ = std::make_unique<CriEnv>(CriBridgeNetwork{netns_->path()});
    cri().set_timeout(CallTimeout(handler()));
  }
  void TearDown() override {
    env_.reset();
    netns_.reset();
  }

  // An HTTP GET from the bridge side; "" when it fails until the deadline.
  std::string FetchFromBridge(const std::string& url, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::string body;
    e2e::WaitFor([&] {
      // python3, not busybox wget: Debian's static busybox wget crashes on the host (glibc NSS).
      auto r = netns_->Run({"python3", "-c",
                            "import sys, urllib.request; "
                            "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
                            url},
                           std::chrono::seconds(15));
      if (!r.ok()) return false;
      body = r.out;
      return true;
    }, timeout);
    return body;
  }

  // A pod of this handler on the bridge, with what the network tests look at.
  struct NetworkPod {
    std::string id;
    v1::PodSandboxConfig config;
    std::string ip;
    std::string netns_path;  // the pod's network namespace as the sandbox spec names it
  };
  // Throws (failing the test) when the sandbox spec names no network namespace.
  NetworkPod RunNetworkPod(const std::string& name) {
    PodOptions options;
    options.name = name;
    NetworkPod pod;
    pod.config = MakePodConfig(env(), options);
    pod.id = RunPod(pod.config);
    const auto status = cri().PodSandboxStatus(pod.id, true);
    pod.ip = status.status().network().ip();
    const auto netns_path = PodNetnsPath(status);
    if (!netns_path) throw std::runtime_error("pod " + name + ": no pod netns in the sandbox spec");
    pod.netns_path = *netns_path;
    return pod;
  }

  std::unique_ptr<TestNetns> netns_;
};

// Test names of suites instantiated over handlers ("uvm-hyperv" -> "uvm_hyperv").
inline std::string HandlerTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (auto& c : name)
    if (c == '-') c = '_';
  return name;
}

}  // namespace uvmshim::cri
