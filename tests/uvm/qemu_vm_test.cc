// Real boots of the utility VM image with QEMU (TCG on this machine: each
// boot takes seconds, so every test boots at most once).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent.grpc.pb.h"
#include "uvm/agent_channel.h"
#include "uvm/qemu_vm.h"
#include "uvm/serial_connect.h"
#include "vm_test_support.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
namespace pb = uvmshim::agent::v1;
using namespace std::chrono_literals;
using test::TempDir;

std::chrono::system_clock::time_point In(std::chrono::milliseconds duration) {
  return std::chrono::system_clock::now() + duration;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class QemuVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_TRUE(fs::exists(test::UvmImageDir() / "initrd.img"))
        << "build the uvm-image target first (" << test::UvmImageDir() << ")";
    state_dir_ = dir_.path() / "state";
  }
  void TearDown() override {
    // Nothing may outlive the QemuVm object: no QEMU, no virtiofsd, no socket.
    EXPECT_TRUE(test::ChildPids().empty()) << "a child process was left behind";
    EXPECT_TRUE(test::SocketsIn(dir_.path()).empty()) << "a socket was left behind";
  }

  TempDir dir_{"uvm-vm-test"};
  fs::path state_dir_;
};

TEST_F(QemuVmTest, BootsToAReadyAgentServesBothPortsRunsAContainerAndStops) {
  VmConfig config = test::ImageConfig("boot", state_dir_);
  const bool share_rootfs = ::geteuid() == 0;
  // The share holds the rootfs as a plain subdirectory here (the shim binds
  // it there; host-shim/sandbox_share.h).
  const fs::path share = dir_.path() / "share";
  const fs::path rootfs = share / "rootfs";
  if (share_rootfs) {
    ASSERT_EQ(test::Shell(std::string(UVMSHIM_ROOTFS_FIXTURE) + " " + rootfs.string()), 0);
    config.share_dir = share;
  }
  pid_t qemu_pid = 0;
  {
    QemuVm vm(config);
    vm.Create();
    vm.Start();
    qemu_pid = static_cast<pid_t>(vm.vmm_pid());
    EXPECT_TRUE(test::ProcessExists(qemu_pid));
    vm.WaitAgentReady();

    const BootTimeline timeline = vm.timeline();
    ASSERT_TRUE(timeline.process_started && timeline.agent_ready);
    EXPECT_LT(*timeline.process_started, *timeline.agent_ready);
    EXPECT_TRUE(timeline.kernel_started.has_value());

    // The channel that proved readiness is the one handed out.
    auto channel = vm.AgentChannel();
    ASSERT_NE(channel, nullptr);
    auto stub = pb::Agent::NewStub(channel);
    {
      grpc::ClientContext context;
      context.set_deadline(In(30s));
      pb::VersionResponse version;
      ASSERT_TRUE(stub->Version(&context, pb::VersionRequest(), &version).ok());
      EXPECT_EQ(version.kernel_release().rfind("6.1.", 0), 0u) << version.kernel_release();
      std::string expected_release = ReadFile(test::UvmImageDir() / "kernel-release");
      expected_release.erase(expected_release.find_last_not_of('\n') + 1);
      EXPECT_EQ(version.kernel_release(), expected_release);
      EXPECT_TRUE(version.in_utility_vm());
      EXPECT_EQ(version.api_version(), 1u);
    }

    // The debug port: each new host connection gets a fresh gRPC connection
    // in the guest (the agent resets the port's bridge on disconnect).
    for (int round = 0; round < 3; ++round) {
      // A new connection with the reset handshake (uvm/serial_connect.h).
      auto debug = ConnectSerialChannel(vm.DebugAgentTarget(), 60s);
      grpc::ClientContext context;
      context.set_deadline(In(30s));
      pb::PingResponse pong;
      const grpc::Status status = pb::Agent::NewStub(debug)->Ping(&context, pb::PingRequest(), &pong);
      EXPECT_TRUE(status.ok()) << "debug port, connection " << round << ": " << status.error_message()
                               << "\nconsole:\n" << vm.ConsoleTail(40);
    }

    if (share_rootfs) {
      // A container whose rootfs is the host directory shared with virtiofs:
      // what it writes is in the host directory at once, as with runc.
      nlohmann::json spec = {
          {"ociVersion", "1.0.2"},
          {"process",
           {{"args", {"/bin/sh", "-c", "echo hello-from-uvm; echo written-in-guest > /from-guest"}},
            {"env", {"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}},
            {"cwd", "/"}}},
          {"root", {{"path", "rootfs"}}},
          {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "mount"}}, {{"type", "uts"}}, {{"type", "ipc"}}}}}}};
      pb::CreateContainerRequest create;
      create.set_container_id("c1");
      create.set_spec_json(spec.dump());
      create.set_rootfs_path(std::string(kGuestSharePath) + "/rootfs");
      {
        grpc::ClientContext context;
        context.set_deadline(In(60s));
        pb::CreateContainerResponse response;
        const grpc::Status status = stub->CreateContainer(&context, create, &response);
        ASSERT_TRUE(status.ok()) << status.error_message() << "\nconsole:\n" << vm.ConsoleTail(30);
      }
      grpc::ClientContext read_context;
      read_context.set_deadline(In(60s));
      pb::ReadOutputRequest read;
      read.set_container_id("c1");
      read.set_stream(pb::STDOUT);
      auto reader = stub->ReadOutput(&read_context, read);
      {
        grpc::ClientContext context;
        context.set_deadline(In(60s));
        pb::StartContainerRequest start;
        start.set_container_id("c1");
        pb::StartContainerResponse response;
        const grpc::Status status = stub->StartContainer(&context, start, &response);
        ASSERT_TRUE(status.ok()) << status.error_message();
      }
      std::string output;
      pb::OutputChunk chunk;
      while (reader->Read(&chunk)) output += chunk.data();
      EXPECT_TRUE(reader->Finish().ok());
      EXPECT_EQ(output, "hello-from-uvm\n");
      grpc::ClientContext wait_context;
      wait_context.set_deadline(In(60s));
      pb::WaitProcessRequest wait;
      wait.set_container_id("c1");
      pb::WaitProcessResponse exited;
      ASSERT_TRUE(stub->WaitProcess(&wait_context, wait, &exited).ok());
      EXPECT_EQ(exited.exit_status(), 0u);
      EXPECT_EQ(ReadFile(rootfs / "from-guest"), "written-in-guest\n");
      grpc::ClientContext delete_context;
      delete_context.set_deadline(In(30s));
      pb::DeleteContainerRequest remove;
      remove.set_container_id("c1");
      pb::DeleteContainerResponse removed;
      EXPECT_TRUE(stub->DeleteContainer(&delete_context, remove, &removed).ok());
    }

    channel.reset();
    stub.reset();
    vm.Stop(30s);
    const ExitInfo info = vm.exit_info();
    EXPECT_EQ(info.reason, ExitReason::kShutdown) << info.detail;
    EXPECT_NE(info.detail.find("powered off"), std::string::npos) << info.detail;
    EXPECT_FALSE(test::ProcessExists(qemu_pid));
    EXPECT_EQ(vm.vmm_pid(), 0);
    EXPECT_NE(ReadFile(vm.console_log()).find("event=power_off"), std::string::npos);
  }
  EXPECT_TRUE(fs::exists(state_dir_ / "console.log")) << "logs stay for inspection";
}

TEST_F(QemuVmTest, KillingQemuIsReportedAsACrashWithinTwoSeconds) {
  QemuVm vm(test::ImageConfig("killed", state_dir_));
  vm.Create();
  vm.Start();
  vm.WaitAgentReady();
  const auto pid = static_cast<pid_t>(vm.vmm_pid());
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  const auto start = std::chrono::steady_clock::now();
  const auto info = vm.WaitForExit(2s);
  ASSERT_TRUE(info.has_value()) << "the VM's death was not noticed within 2 s";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(info->reason, ExitReason::kCrashed) << info->detail;
  EXPECT_NE(info->detail.find("SIGKILL"), std::string::npos) << info->detail;
  EXPECT_FALSE(test::ProcessExists(pid));
  // The monitor removes the sockets as it records the exit; allow the
  // filesystem a moment under a loaded machine, and name what is left.
  auto left = test::SocketsIn(state_dir_);
  for (int i = 0; i < 50 && !left.empty(); ++i) {
    std::this_thread::sleep_for(20ms);
    left = test::SocketsIn(state_dir_);
  }
  EXPECT_TRUE(left.empty()) << "left: " << (left.empty() ? "" : left.front().string());
}

TEST_F(QemuVmTest, TerminateEndsTheVmAtOnce) {
  QemuVm vm(test::ImageConfig("terminated", state_dir_));
  vm.Create();
  vm.Start();
  const auto pid = static_cast<pid_t>(vm.vmm_pid());
  const auto start = std::chrono::steady_clock::now();
  vm.Terminate();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kTerminated) << vm.exit_info().detail;
  EXPECT_FALSE(test::ProcessExists(pid));
  EXPECT_THROW(vm.WaitAgentReady(), VmError);
}

TEST_F(QemuVmTest, StopWithoutAnAnsweringAgentQuitsQemuAfterTheTimeout) {
  QemuVm vm(test::ImageConfig("stop-early", state_dir_));
  vm.Create();
  vm.Start();
  const auto pid = static_cast<pid_t>(vm.vmm_pid());
  const auto start = std::chrono::steady_clock::now();
  vm.Stop(500ms);  // the guest is still booting: nothing powers it off
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  const ExitInfo info = vm.exit_info();
  EXPECT_EQ(info.reason, ExitReason::kShutdown) << info.detail;
  EXPECT_NE(info.detail.find("QEMU was told to quit"), std::string::npos) << info.detail;
  EXPECT_FALSE(test::ProcessExists(pid));
}

TEST_F(QemuVmTest, AWrongInitrdFailsTheBootWithTheConsoleTail) {
  // The bare-floor initrd boots and powers off without ever starting an agent.
  VmConfig config = test::ImageConfig("wrong-initrd", state_dir_);
  config.initrd = test::BareImageDir() / "initrd.img";
  QemuVm vm(config);
  vm.Create();
  vm.Start();
  try {
    vm.WaitAgentReady();
    FAIL() << "WaitAgentReady() succeeded without an agent";
  } catch (const VmError& error) {
    EXPECT_NE(std::string(error.what()).find("UVMSHIM-BARE-FLOOR-READY"), std::string::npos) << error.what();
  }
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kBootFailed) << vm.exit_info().detail;
}

TEST_F(QemuVmTest, AnAgentThatNeverAnswersHitsTheBootTimeout) {
  // The agent listens on vsock only: nothing answers on the serial port.
  QemuOptions options;
  options.agent_listen = "vsock://1024";
  VmConfig config = test::ImageConfig("timeout", state_dir_);
  config.boot_timeout = 8s;
  QemuVm vm(config, options);
  vm.Create();
  vm.Start();
  const auto pid = static_cast<pid_t>(vm.vmm_pid());
  // The deadline runs from Start() and is only checked in WaitAgentReady():
  // calling it once the agent has logged its listeners keeps the console
  // tail's content independent of how slowly TCG boots on a loaded host (the
  // agent's first line came after 6 s of 8 under load).
  ASSERT_TRUE(test::WaitForFileText(vm.console_log(), "event=agent_serving", 300s))
      << "the agent never logged serving:\n" << vm.ConsoleTail(40);
  try {
    vm.WaitAgentReady();
    FAIL() << "WaitAgentReady() succeeded without a reachable agent";
  } catch (const VmError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("did not answer within 8000 ms"), std::string::npos) << text;
    EXPECT_NE(text.find("last console lines"), std::string::npos) << text;
    EXPECT_NE(text.find("event="), std::string::npos) << "console tail missing: " << text;
  }
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kBootFailed);
  EXPECT_FALSE(test::ProcessExists(pid));
}

}  // namespace
}  // namespace uvmshim::uvm
