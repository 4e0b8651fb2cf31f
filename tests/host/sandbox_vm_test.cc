// One utility VM, two containers, the second created while the first runs
// (what a pod's app container does): its rootfs and volume are bound into the
// running VM's share and seen through the one virtiofsd, and both containers'
// /dev/shm binds are the same guest tmpfs (pods-design item 4). Real QEMU
// (TCG here), real virtiofsd, real mounts; needs root and the boot image.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent_client.h"
#include "mounts_under.h"
#include "vm_test_support.h"
#include "oci_spec.h"
#include "paths.h"
#include "sandbox_share.h"
#include "agent_host_factory.h"

namespace uvmshim::host {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test_support::MountsUnder;

using test_support::ReadFile;

class SandboxVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = test_support::MissingVmPrerequisite()) GTEST_SKIP() << *why;
    dir_ = test_support::MakeDirWithRootfs("svt", UVMSHIM_BUSYBOX_ROOTFS);
    for (const char* d : {"out", "late", "shm"}) fs::create_directories(dir_ / d);
    std::ofstream(dir_ / "late/in.txt") << "late-volume\n";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    EXPECT_TRUE(MountsUnder(dir_).empty()) << "mounts left under " << dir_;
    fs::remove_all(dir_);
  }

  // Prepares, creates and starts one container; returns its guest pid.
  std::uint32_t Run(AgentHost& host, AgentClient& agent, const std::string& id, const SpecOptions& options) {
    return test_support::StartContainerIn(host, agent, id, dir_ / "rootfs", options);
  }

  fs::path dir_;
};

TEST_F(SandboxVmTest, ASecondContainerBringsItsMountsIntoTheRunningVm) {
  SandboxSpec spec;
  spec.id = "svt" + std::to_string(::getpid());
  spec.state_dir = dir_ / "state";
  spec.socket_dir = SocketDirFor(spec.state_dir);
  spec.config.isolation = Isolation::kHyperv;
  auto host = StartAgentHost(spec);
  AgentClient agent(host->channel());

  SpecOptions first;
  first.process.args = {"sh", "-c",
                        "i=0; while [ ! -s /dev/shm/from-2 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; "
                        "cat /dev/shm/from-2 > /out/first-saw"};
  first.volumes = {{(dir_ / "out").string(), "/out", false}, {(dir_ / "shm").string(), "/dev/shm", false}};
  ASSERT_NO_THROW(Run(*host, agent, "c1", first));

  SpecOptions second;
  second.process.args = {"sh", "-c", "cat /late/in.txt > /dev/shm/from-2"};
  second.volumes = {{(dir_ / "late").string(), "/late", true}, {(dir_ / "shm").string(), "/dev/shm", false}};
  ASSERT_NO_THROW(Run(*host, agent, "c2", second));
  EXPECT_EQ(agent.WaitProcess("c2", "").exit_status, 0u) << host->console_log();
  EXPECT_EQ(agent.WaitProcess("c1", "").exit_status, 0u) << host->console_log();
  EXPECT_EQ(ReadFile(dir_ / "out/first-saw"), "late-volume\n")
      << "the first container did not see, in the pod's /dev/shm, what the second read from its volume";
  EXPECT_FALSE(fs::exists(dir_ / "shm/from-2")) << "the pod's /dev/shm must be guest memory, not the host dir";

  for (const char* id : {"c1", "c2"}) {
    agent.DeleteContainer(id, true);
    host->ReleaseContainer(id);
    EXPECT_TRUE(ShareEntriesOf(spec.state_dir / "share", id).empty()) << id;
  }
  EXPECT_TRUE(MountsUnder(spec.state_dir / "share/").empty()) << "a container's entry stayed mounted";
  agent.Shutdown(10s);
  host->WaitEnded(30s);
  host.reset();
  EXPECT_EQ(ReadFile(dir_ / "late/in.txt"), "late-volume\n");
}

}  // namespace
}  // namespace uvmshim::host
