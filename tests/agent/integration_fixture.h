// A fresh uvm-agent per test, and the leak checks every test ends with.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <gtest/gtest.h>

#include "tests/agent/agent_test_support.h"

namespace uvmshim::agent::testing {

class AgentIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, mounts, cgroups)";
    agent_ = std::make_unique<AgentProcess>();
  }
  void TearDown() override {
    if (!agent_) return;
    if (agent_->pid() > 0) {
      auto children = agent_->Children();
      EXPECT_TRUE(agent_->WaitNoChildren(std::chrono::seconds(5)))
          << "agent still has " << agent_->Children().size() << " children";
    }
    EXPECT_FALSE(HostMountsMention(agent_->dir())) << "a mount under the test dir leaked";
    EXPECT_FALSE(HostMountsMention(BusyboxRootfs())) << "a mount of the rootfs leaked into the host";
    if (HasFailure() || std::getenv("UVMSHIM_TEST_SHOW_LOG")) std::cerr << "---- agent log ----\n" << agent_->Log() << "-------------------\n";
    agent_.reset();
  }
  AgentProcess& agent() { return *agent_; }
  pb::Agent::Stub& stub() { return agent_->stub(); }

  std::unique_ptr<AgentProcess> agent_;
};

}  // namespace uvmshim::agent::testing
