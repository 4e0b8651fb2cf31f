// The fixture of the warm pool's VM tests (pool_vm_test, pool_snapshot_test):
// a private $UVMSHIM_ROOT with a busybox rootfs, a pool of one hyperv VM per
// key, waits on the keepers' published state, and a container run in a
// claimed VM. Needs root and the boot image; each test has its own root, so
// copies of the suite can run together.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "agent_client.h"
#include "agent_host_factory.h"
#include "oci_spec.h"
#include "paths.h"
#include "pool/pool_dir.h"
#include "pool/pool_fill.h"
#include "sandbox_share.h"
#include "vm_test_support.h"

namespace uvmshim::host {

class PoolFixture : public ::testing::Test {
 protected:
  explicit PoolFixture(std::string dir_prefix) : dir_prefix_(std::move(dir_prefix)) {}

  void SetUp() override {
    if (auto why = test_support::MissingVmPrerequisite()) GTEST_SKIP() << *why;
    dir_ = test_support::MakeDirWithRootfs(dir_prefix_, UVMSHIM_BUSYBOX_ROOTFS);
    ::setenv("UVMSHIM_ROOT", (dir_ / "root").c_str(), 1);
    ::setenv("UVMSHIM_POOL_KEEPER", UVMSHIM_POOL_KEEPER_PATH, 1);
    config_.isolation = Isolation::kHyperv;
    config_.pool.enabled = true;
    config_.pool.size = 1;
    key_ = pool::KeyFor(config_);
  }
  void TearDown() override {
    if (dir_.empty()) return;
    EXPECT_TRUE(DrainAll()) << "pool VMs left behind";
    EXPECT_TRUE(MountPointsUnder(dir_).empty()) << "mounts left under " << dir_;
    std::filesystem::remove_all(dir_);
    ::unsetenv("UVMSHIM_ROOT");
  }

  // Keepers are other processes that publish their state in files: polled.
  static bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
  }
  // Every keeper of every key has ended. Drained again on each look: a keeper
  // still booting ends once it is up (its SIGTERM waits for the boot).
  static bool DrainAll() {
    return WaitFor([] {
      pool::DrainPool();
      for (const auto& key_dir : pool::ListKeyDirs())
        if (!pool::ListVms(key_dir).empty()) return false;
      return true;
    }, std::chrono::seconds(300));
  }
  std::vector<pool::PoolVm> Ready() {
    std::vector<pool::PoolVm> ready;
    for (auto& vm : pool::ListVms(pool::KeyDir(key_)))
      if (vm.state == pool::VmState::kReady && vm.keeper_alive) ready.push_back(vm);
    return ready;
  }
  bool WaitReady(std::size_t count) {
    return WaitFor([&] { return Ready().size() >= count; }, std::chrono::seconds(300));
  }
  // Why the key's last keeper failed, for assertion messages.
  std::string Failure() { return test_support::ReadFile(pool::KeyDir(key_) / "last-failure.log"); }

  SandboxSpec Spec(const std::string& id) {
    SandboxSpec spec;
    spec.id = id;
    spec.config = config_;
    spec.state_dir = dir_ / id;
    spec.socket_dir = SocketDirFor(spec.state_dir);
    return spec;
  }

  // Runs `script` in a container of `host`; returns its /out/result (a volume).
  std::string RunScript(AgentHost& host, const std::string& id, const std::string& script) {
    AgentClient agent(host.channel());
    const std::filesystem::path out = dir_ / ("out-" + id);
    std::filesystem::create_directories(out);
    SpecOptions options;
    options.process.args = {"sh", "-c", script};
    options.volumes = {{out.string(), "/out", false}};
    test_support::StartContainerIn(host, agent, id, dir_ / "rootfs", options);
    EXPECT_EQ(agent.WaitProcess(id, "").exit_status, 0u) << test_support::ReadFile(host.console_log());
    agent.DeleteContainer(id, true);
    host.ReleaseContainer(id);
    return test_support::ReadFile(out / "result");
  }

  std::filesystem::path dir_;
  SandboxConfig config_;
  pool::PoolKey key_;

 private:
  std::string dir_prefix_;
};

}  // namespace uvmshim::host
