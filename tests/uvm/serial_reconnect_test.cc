// The debug port under reconnects: clients that vanish in the middle of a
// stream (the guest still writing their output) must not break the next
// client's handshake. Each round's client uses the product's connector
// (uvm/serial_connect.h: the reset handshake).
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>

#include "agent.grpc.pb.h"
#include "uvm/qemu_vm.h"
#include "uvm/serial_connect.h"
#include "vm_test_support.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
namespace pb = uvmshim::agent::v1;
using namespace std::chrono_literals;

class SerialReconnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/qemu-system-x86_64", X_OK) != 0) GTEST_SKIP() << "qemu-system-x86_64 not installed";
    ASSERT_TRUE(fs::exists(test::UvmImageDir() / "initrd.img"))
        << "build the uvm-image target first (" << test::UvmImageDir() << ")";
  }
  void TearDown() override {
    EXPECT_TRUE(test::ChildPids().empty()) << "a child process was left behind";
    EXPECT_TRUE(test::SocketsIn(dir_.path()).empty()) << "a socket was left behind";
  }
  test::TempDir dir_{"uvm-serial-reconnect"};
};

TEST_F(SerialReconnectTest, ClientsAbandonedMidStreamDoNotBreakTheNext) {
  QemuVm vm(test::ImageConfig("reconnect", dir_.path() / "state"));
  vm.Create();
  vm.Start();
  vm.WaitAgentReady();
  constexpr int kRounds = 40;
  for (int round = 0; round < kRounds; ++round) {
    // A client that starts a console printing a lot and vanishes while the
    // guest is still sending: its tail is in flight when the next one connects.
    {
      std::shared_ptr<grpc::Channel> noisy;
      ASSERT_NO_THROW(noisy = ConnectSerialChannel(vm.DebugAgentTarget(), 60s)) << vm.ConsoleTail(30);
      auto stub = pb::Agent::NewStub(noisy);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + 60s);
      auto stream = stub->Console(&context);
      pb::ConsoleInput first;
      for (const char* arg : {"/bin/sh", "-c", "seq 1 1000000"}) first.add_command(arg);
      ASSERT_TRUE(stream->Write(first));
      pb::ConsoleOutput output;
      EXPECT_TRUE(stream->Read(&output)) << "round " << round << ": no console output";
      context.TryCancel();
    }
    // The next client's handshake and call complete.
    std::shared_ptr<grpc::Channel> next;
    try {
      next = ConnectSerialChannel(vm.DebugAgentTarget(), 60s);
    } catch (const std::exception& e) {
      FAIL() << "round " << round << ": " << e.what() << "\nconsole:\n" << vm.ConsoleTail(40);
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    pb::PingResponse pong;
    const grpc::Status status = pb::Agent::NewStub(next)->Ping(&context, pb::PingRequest(), &pong);
    ASSERT_TRUE(status.ok()) << "round " << round << ": " << status.error_message() << "\nconsole:\n"
                             << vm.ConsoleTail(40);
  }
  vm.Stop(30s);
}

}  // namespace
}  // namespace uvmshim::uvm
