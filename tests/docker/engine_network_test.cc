// The network Docker or Podman prepared reaches the container, for runc (the
// control) and uvm-runc in process and hyperv isolation:
//  - Docker: a user-defined bridge network (libnetwork fills the container's
//    new network namespace from its prestart hook, libnetwork-setkey);
//  - Podman: its default CNI bridge network (a netns path in the spec).
// Each test moves its whole process (and so the engine it starts) into a
// network namespace of its own: every bridge, address and packet stays there.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "docker_fixture.h"

namespace uvmshim::e2e {
namespace {
namespace fs = std::filesystem;

// This process in a new network namespace (lo up) until destroyed.
class PrivateNetns {
 public:
  PrivateNetns() : own_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    if (own_ < 0 || ::unshare(CLONE_NEWNET) != 0)
      throw std::runtime_error(std::string("a private network namespace: ") + std::strerror(errno));
    auto lo = RunCommand({"ip", "link", "set", "lo", "up"});
    if (!lo.ok()) throw std::runtime_error("ip link set lo up: " + lo.Describe());
  }
  ~PrivateNetns() {
    if (own_ >= 0) {
      ::setns(own_, CLONE_NEWNET);
      ::close(own_);
    }
  }
  PrivateNetns(const PrivateNetns&) = delete;
  PrivateNetns& operator=(const PrivateNetns&) = delete;

 private:
  int own_;
};

// An HTTP GET from this (the engine's) namespace; "" when it fails until the deadline.
std::string Fetch(const std::string& url, std::chrono::milliseconds timeout) {
  std::string body;
  WaitFor([&] {
    // python3, not busybox wget: Debian's static busybox wget crashes on the host (glibc NSS).
    auto r = RunCommand({"python3", "-c",
                         "import sys, urllib.request; "
                         "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
                         url},
                        CommandOptions().WithTimeout(15s));
    if (!r.ok()) return false;
    body = r.out;
    return true;
  }, timeout);
  return body;
}

// A busybox httpd that first prints its addresses (`ip addr`), serving its name.
std::vector<std::string> HttpdCommand(const std::string& name) {
  return {"sh", "-c",
          "ip addr; mkdir -p /www && echo served-by-" + name + " >/www/index.html && exec httpd -f -p 8080 -h /www"};
}

class DockerNetwork : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingFor(GetParam(), kDockerd)) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(netns_ = std::make_unique<PrivateNetns>());
    ASSERT_NO_THROW(docker_ = StartDockerWithUvmRuntimes());
  }
  void TearDown() override {
    docker_.reset();
    netns_.reset();
  }
  std::unique_ptr<PrivateNetns> netns_;
  std::unique_ptr<DockerEnv> docker_;
};

TEST_P(DockerNetwork, BridgeNetworkServesFromTheContainer) {
  const auto& c = GetParam();
  const auto options = CommandOptions().WithTimeout(c.op_timeout());
  auto net = docker_->Docker({"network", "create", "--driver", "bridge", "--subnet", "10.213.7.0/24", "uvmnet"});
  ASSERT_TRUE(net.ok()) << net.Describe() << docker_->LogTail();
  auto run = docker_->Docker({"run", "-d", "--runtime", c.runtime, "--network", "uvmnet", kEngineImage,
                              HttpdCommand(c.name)[0], HttpdCommand(c.name)[1], HttpdCommand(c.name)[2]},
                             options);
  ASSERT_TRUE(run.ok()) << run.Describe() << docker_->LogTail();
  const std::string id = Trim(run.out);
  const std::string ip =
      Trim(docker_->Docker({"inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id}).out);
  ASSERT_TRUE(ip.starts_with("10.213.7.")) << "container address: '" << ip << "'";
  EXPECT_EQ(Trim(Fetch("http://" + ip + ":8080/index.html", c.op_timeout())), "served-by-" + c.name)
      << docker_->Docker({"logs", id}).Describe() << docker_->LogTail();
  auto logs = docker_->Docker({"logs", id});
  EXPECT_NE(logs.out.find("inet " + ip + "/24"), std::string::npos) << "ip addr in the container:\n" << logs.out;
  auto rm = docker_->Docker({"rm", "-f", id}, options);
  EXPECT_TRUE(rm.ok()) << rm.Describe();
  auto rmnet = docker_->Docker({"network", "rm", "uvmnet"}, options);
  EXPECT_TRUE(rmnet.ok()) << rmnet.Describe();
}

// --network none: Docker's hook still runs; the container sees loopback only.
TEST_P(DockerNetwork, NoNetworkStillWorks) {
  const auto& c = GetParam();
  auto r = docker_->Docker({"run", "--rm", "--runtime", c.runtime, "--network", "none", kEngineImage, "sh", "-c",
                            "ip -o link | grep -c -v ' lo:'; exit 0"},
                           CommandOptions().WithTimeout(c.op_timeout()));
  ASSERT_TRUE(r.ok()) << r.Describe() << docker_->LogTail();
  EXPECT_EQ(Trim(r.out), "0") << "only loopback under --network none";
}

INSTANTIATE_TEST_SUITE_P(Runtimes, DockerNetwork, ::testing::ValuesIn(AllEngineCases()), EngineCaseName);

// CNI's host-local keeps its address records in /var/lib/cni/networks/<name>
// unless the network's ipam says otherwise: this test's stay in its own dir.
void KeepAddressesInTheTestDir(const fs::path& conflist, const fs::path& data_dir) {
  std::ifstream in(conflist);
  ASSERT_TRUE(in) << "podman wrote no " << conflist;
  auto config = nlohmann::json::parse(in);
  bool patched = false;
  for (auto& plugin : config["plugins"])
    if (plugin.contains("ipam") && plugin["ipam"].value("type", "") == "host-local") {
      plugin["ipam"]["dataDir"] = data_dir.string();
      patched = true;
    }
  ASSERT_TRUE(patched) << "no host-local ipam in " << config.dump();
  std::ofstream(conflist, std::ios::trunc) << config.dump(2);
}

class PodmanNetwork : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    if (auto why = MissingFor(GetParam(), kPodman)) GTEST_SKIP() << *why;
    ASSERT_NO_THROW(netns_ = std::make_unique<PrivateNetns>());
    ASSERT_NO_THROW(podman_ = std::make_unique<PodmanEnv>());
  }
  void TearDown() override {
    podman_.reset();
    netns_.reset();
  }
  OciRuntime Runtime() const { return GetParam().is_uvm() ? UvmRuncRuntime(GetParam().isolation) : OciRuntime{}; }
  CommandResult Podman(const std::vector<std::string>& args) {
    return podman_->Podman(args, Runtime(), CommandOptions().WithTimeout(GetParam().op_timeout()));
  }
  std::unique_ptr<PrivateNetns> netns_;
  std::unique_ptr<PodmanEnv> podman_;
};

TEST_P(PodmanNetwork, BridgeNetworkServesFromTheContainer) {
  const auto& c = GetParam();
  const std::string config_dir = (podman_->dir() / "networks").string();
  auto net = Podman({"--network-config-dir", config_dir, "network", "create", "--subnet", "10.214.9.0/24", "uvmnet"});
  ASSERT_TRUE(net.ok()) << net.Describe();
  KeepAddressesInTheTestDir(fs::path(config_dir) / "uvmnet.conflist", podman_->dir() / "cni-ipam");
  std::vector<std::string> args{"--network-config-dir", config_dir, "run", "-d", "--pull", "never", "--network",
                                "uvmnet", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", kPodmanImage};
  for (const auto& a : HttpdCommand(c.name)) args.push_back(a);
  auto run = Podman(args);
  ASSERT_TRUE(run.ok()) << run.Describe();
  const std::string id = Trim(run.out);
  const std::string ip =
      Trim(Podman({"--network-config-dir", config_dir, "inspect", "-f",
                   "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id}).out);
  ASSERT_TRUE(ip.starts_with("10.214.9.")) << "container address: '" << ip << "'";
  EXPECT_EQ(Trim(Fetch("http://" + ip + ":8080/index.html", c.op_timeout())), "served-by-" + c.name)
      << Podman({"logs", id}).Describe();
  auto logs = Podman({"logs", id});
  EXPECT_NE(logs.out.find("inet " + ip + "/24"), std::string::npos) << "ip addr in the container:\n" << logs.out;
  auto rm = Podman({"--network-config-dir", config_dir, "rm", "-f", "-t", "0", id});
  EXPECT_TRUE(rm.ok()) << rm.Describe();
}

INSTANTIATE_TEST_SUITE_P(Runtimes, PodmanNetwork, ::testing::ValuesIn(AllEngineCases()), EngineCaseName);

}  // namespace
}  // namespace uvmshim::e2e
