// Warm pool (issue #15) and pod networks: a pooled VM boots without a NIC, so
// a sandbox with a network takes the cold path even with the pool on, gets
// its own VM with the pod's card, and leaves the warm VM to the next claimer.
// Needs root, the boot image and `ip`; the pod netns is the test's own.
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "agent.grpc.pb.h"
#include "agent_client.h"
#include "agent_host_factory.h"
#include "netns/pod_network_attachment.h"
#include "oci_spec.h"
#include "paths.h"
#include "pool/pool_dir.h"
#include "pool/pool_fill.h"
#include "tests/shell_output.h"

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace pool;
using test_support::Shell;

constexpr const char* kPodMac = "02:00:0a:4e:00:02";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);  // keepers publish their state in files
  }
  return done();
}

class PoolNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "virtiofsd, bind mounts and network namespaces need root";
    if (!fs::exists(ImagesDir() / "vmlinuz") || !fs::exists(ImagesDir() / "initrd.img"))
      GTEST_SKIP() << "no boot image in " << ImagesDir();
    char pattern[] = "/tmp/pnt.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    ::setenv("UVMSHIM_ROOT", (dir_ / "root").c_str(), 1);
    ::setenv("UVMSHIM_POOL_KEEPER", UVMSHIM_POOL_KEEPER_PATH, 1);
    ASSERT_EQ(std::system(("cp -a " UVMSHIM_BUSYBOX_ROOTFS " " + (dir_ / "rootfs").string()).c_str()), 0);
    static std::atomic<int> counter{0};
    pod_ = "uvmshim-poolnet-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    int status = 0;
    peer_ = pod_ + "-peer";
    const std::string out = Shell("set -e; ip netns add " + pod_ + "; ip netns add " + peer_ + "; ip -n " + peer_ +
                                      " link add vpeer type veth peer name eth0 netns " + pod_ + "; ip -n " + pod_ +
                                      " link set eth0 address " + kPodMac + " up; ip -n " + pod_ +
                                      " addr add 10.78.0.2/24 dev eth0; ip -n " + peer_ + " link set vpeer up",
                                  &status);
    ASSERT_EQ(status, 0) << out;
    config_.isolation = Isolation::kHyperv;
    config_.pool.enabled = true;
    config_.pool.size = 1;
    key_ = KeyFor(config_);
  }
  void TearDown() override {
    if (!pod_.empty()) Shell("ip netns del " + pod_ + "; ip netns del " + peer_);
    if (dir_.empty()) return;
    EXPECT_TRUE(WaitFor([&] { DrainPool(); return ListVms(KeyDir(key_)).empty(); }, 300s)) << "pool VMs left behind";
    fs::remove_all(dir_);
    ::unsetenv("UVMSHIM_ROOT");
  }
  std::vector<PoolVm> Ready() {
    std::vector<PoolVm> ready;
    for (auto& vm : ListVms(KeyDir(key_)))
      if (vm.state == VmState::kReady && vm.keeper_alive) ready.push_back(vm);
    return ready;
  }

  fs::path dir_;
  std::string pod_, peer_;
  SandboxConfig config_;
  PoolKey key_;
};

TEST_F(PoolNetworkTest, APodWithANetworkBootsColdAndLeavesTheWarmVmReady) {
  FillPool(key_, {1, 4096});
  ASSERT_TRUE(WaitFor([&] { return !Ready().empty(); }, 300s)) << ReadFile(KeyDir(key_) / "last-failure.log");
  const PoolVm warm = Ready().front();

  auto network = netns::PodNetworkAttachment::Attach("/run/netns/" + pod_, "linux.namespaces[1].path");
  ASSERT_TRUE(network->has_interfaces());
  SandboxSpec spec;
  spec.id = "pn";
  spec.config = config_;
  spec.state_dir = dir_ / "pn";
  spec.socket_dir = SocketDirFor(spec.state_dir);
  spec.nics = network->nics();
  auto host = StartAgentHost(spec);
  network->CloseTapFds();  // QEMU holds the tap now
  EXPECT_NE(host->pid(), warm.qemu_pid) << "a pooled VM (no NIC) was claimed for a pod with a network";

  // The cold VM has the pod's card: its MAC is the pod interface's.
  AgentClient agent(host->channel());
  const fs::path out = dir_ / "out";
  fs::create_directories(out);
  SpecOptions options;
  options.process.args = {"sh", "-c", "cat /sys/class/net/*/address > /out/result"};
  options.volumes = {{out.string(), "/out", false}};
  const GuestContainer guest = host->PrepareContainer("pc", dir_ / "rootfs", BuildSpecJson(options));
  agentpb::CreateContainerRequest create;
  create.set_container_id("pc");
  create.set_spec_json(guest.spec_json);
  create.set_rootfs_path(guest.rootfs);
  agent.CreateContainer(create);
  agent.StartContainer("pc");
  EXPECT_EQ(agent.WaitProcess("pc", "").exit_status, 0u);
  agent.DeleteContainer("pc", true);
  host->ReleaseContainer("pc");
  EXPECT_NE(ReadFile(out / "result").find(kPodMac), std::string::npos) << ReadFile(out / "result");

  host->Kill();
  host.reset();
  network.reset();
  const auto still = Ready();
  ASSERT_EQ(still.size(), 1u);
  EXPECT_EQ(still.front().id, warm.id) << "the warm VM was used or lost";
}

}  // namespace
}  // namespace uvmshim::host
