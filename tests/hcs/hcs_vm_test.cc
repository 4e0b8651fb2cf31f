// HcsVm's state machine against the scripted FakeHcsApi (HCS cannot run
// here). The guest agent is stood in for by a real TCP echo server, reached
// through the real relay.
#include "uvm/hcs/hcs_vm.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "echo_server.h"
#include "fake_hcs_api.h"
#include "test_util.h"

namespace uvmshim::uvm::hcs {
namespace {

using namespace std::chrono_literals;
using testing::EchoServer;
using testing::FakeHcsApi;
using testing::TempDir;

bool Contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

class HcsVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_ = dir_.WriteFile("vmlinuz", "kernel");
    initrd_ = dir_.WriteFile("initrd.img", "initrd");
    config_.id = "uvm-test-1";
    config_.kernel = kernel_;
    config_.initrd = initrd_;
    config_.memory_mb = 512;
    config_.cpus = 1;
    config_.state_dir = dir_.path() / "state";
    config_.debug_console = false;
    config_.boot_timeout = 5s;
    options_.control_timeouts = {500ms, 100ms};
    options_.start_timeouts = {500ms, 100ms};
    options_.create_timeouts = {500ms, 100ms};
    options_.ready_probe_interval = 20ms;
    options_.ready_probe_connect_timeout = 200ms;
    options_.exit_event_grace = 100ms;
  }

  void TearDown() override {
    vm_.reset();
    agent_.Stop();
    EXPECT_EQ(api_->open_operations(), 0);
    EXPECT_EQ(api_->open_systems(), 0);
    EXPECT_FALSE(api_->closed_in_flight());
    EXPECT_FALSE(api_->misuse());
  }

  HcsVm& MakeVm() {
    HcsVmDeps deps;
    deps.api = api_;
    deps.dial_guest = [this](const Guid& vm_id, std::uint32_t port,
                             std::chrono::milliseconds timeout) -> std::unique_ptr<net::ByteStream> {
      {
        std::lock_guard lock(dial_mutex_);
        dialed_vm_ = vm_id;
        dialed_port_ = port;
      }
      if (!agent_up_) throw net::SocketError("fake hvsocket: connection refused");
      return std::make_unique<net::SocketStream>(net::ConnectTcpLoopback(agent_.port(), timeout));
    };
    deps.make_relay_listener = [] { return std::make_unique<net::TcpLoopbackListener>(0); };
    deps.probe_host = [this] { return host_; };
    vm_ = std::make_unique<HcsVm>(config_, options_, deps);
    return *vm_;
  }

  HcsVm& StartedVm() {
    HcsVm& vm = MakeVm();
    vm.Create();
    vm.Start();
    vm.WaitAgentReady();
    return vm;
  }

  TempDir dir_;
  std::filesystem::path kernel_;
  std::filesystem::path initrd_;
  VmConfig config_;
  HcsVmOptions options_;
  HostInfo host_{26100, 8};  // what the injected host probe reports
  std::shared_ptr<FakeHcsApi> api_ = std::make_shared<FakeHcsApi>();
  EchoServer agent_;
  std::atomic<bool> agent_up_{true};
  std::mutex dial_mutex_;
  Guid dialed_vm_{};
  std::uint32_t dialed_port_ = 0;
  std::unique_ptr<HcsVm> vm_;
};

TEST_F(HcsVmTest, FullLifecycle) {
  HcsVm& vm = MakeVm();
  vm.Create();
  EXPECT_EQ(api_->create_id(), "uvm-test-1");
  EXPECT_EQ(api_->property_query(), "{}");
  EXPECT_EQ(ToString(vm.runtime_id()), FakeHcsApi::kRuntimeId);
  // The boot files were granted to the VM before it was created.
  auto grants = api_->grants();
  ASSERT_EQ(grants.size(), 2u);
  EXPECT_EQ(grants[0], std::make_pair(std::string("uvm-test-1"), kernel_.string()));
  EXPECT_EQ(grants[1], std::make_pair(std::string("uvm-test-1"), initrd_.string()));
  auto calls = api_->Calls();
  ASSERT_GE(calls.size(), 3u);
  EXPECT_EQ(calls[0], "Grant");
  EXPECT_EQ(calls[1], "Grant");
  // HCS got exactly the builder's document for this config.
  UvmDocumentOptions expected;
  expected.kernel_path = kernel_.string();
  expected.initrd_path = initrd_.string();
  expected.memory_mb = 512;
  expected.cpus = 1;
  expected.host = host_;
  EXPECT_EQ(api_->create_document(), BuildUvmDocument(expected));
  EXPECT_EQ(vm.document(), api_->create_document());
  EXPECT_TRUE(Contains(vm.AgentTarget(), "ipv4:127.0.0.1:")) << vm.AgentTarget();

  vm.Start();
  vm.WaitAgentReady();
  {
    std::lock_guard lock(dial_mutex_);
    EXPECT_EQ(ToString(dialed_vm_), FakeHcsApi::kRuntimeId);  // VmId = RuntimeId
    EXPECT_EQ(dialed_port_, kDefaultAgentVsockPort);
  }
  BootTimeline timeline = vm.timeline();
  EXPECT_TRUE(timeline.process_started.has_value());
  EXPECT_TRUE(timeline.agent_ready.has_value());
  EXPECT_GE(*timeline.agent_ready, *timeline.process_started);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kRunning);
  EXPECT_EQ(vm.vmm_pid(), 0);
  EXPECT_EQ(vm.DebugAgentTarget(), "");

  // gRPC would connect to AgentTarget(): bytes go through the relay to the agent.
  const std::string target = vm.AgentTarget();
  const auto port = static_cast<std::uint16_t>(std::stoi(target.substr(target.rfind(':') + 1)));
  net::SocketStream client(net::ConnectTcpLoopback(port, 1s));
  const std::string hello = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  client.WriteAll(hello);
  EXPECT_EQ(testing::ReadExactly(client, hello.size()), hello);

  vm.Stop(2s);
  auto exit = vm.WaitForExit(1s);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->reason, ExitReason::kShutdown);
  EXPECT_TRUE(Contains(exit->detail, "GracefulExit")) << exit->detail;
  EXPECT_EQ(api_->CountCalls("ShutDown"), 1);
  EXPECT_EQ(api_->CountCalls("Terminate"), 0);
  vm.Stop(1s);  // no-op once exited
  vm.Terminate();
  EXPECT_EQ(api_->CountCalls("ShutDown"), 1);
  EXPECT_EQ(api_->CountCalls("Terminate"), 0);
}

TEST_F(HcsVmTest, VcpusAboveTheHostsProcessorsAreClampedInTheDocument) {
  config_.cpus = 16;
  host_ = {18362, 4};
  HcsVm& vm = MakeVm();
  vm.Create();
  const auto document = nlohmann::json::parse(api_->create_document());
  EXPECT_EQ(document["VirtualMachine"]["ComputeTopology"]["Processor"]["Count"], 4);
  EXPECT_TRUE(Contains(document["VirtualMachine"]["Chipset"]["LinuxKernelDirect"]["KernelCmdLine"].get<std::string>(),
                       " nr_cpus=4"));
}

TEST_F(HcsVmTest, HostBuildBelowTheMinimumIsRefusedBeforeAnyHcsCall) {
  host_ = {17134, 8};  // Windows 10 1803
  HcsVm& vm = MakeVm();
  try {
    vm.Create();
    FAIL() << "create on build 17134 succeeded";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "17134")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "minimum is build 17763")) << e.what();
  }
  EXPECT_EQ(api_->create_document(), "");
}

TEST_F(HcsVmTest, MissingBootFileDetectedBeforeAnyHcsCall) {
  config_.initrd = dir_.path() / "no-such-initrd.img";
  HcsVm& vm = MakeVm();
  try {
    vm.Create();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "boot file missing: initrd")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "no-such-initrd.img")) << e.what();
  }
  EXPECT_TRUE(api_->Calls().empty());
  // Nothing was started, so once the file is there the same object can create.
  dir_.WriteFile("no-such-initrd.img", "initrd");
  EXPECT_NO_THROW(vm.Create());
}

TEST_F(HcsVmTest, MissingRootfsDirectoryDetectedBeforeAnyHcsCall) {
  config_.rootfs_dir = dir_.path() / "no-rootfs";
  HcsVm& vm = MakeVm();
  EXPECT_THROW(vm.Create(), VmError);
  EXPECT_TRUE(api_->Calls().empty());
}

TEST_F(HcsVmTest, DocumentRejectedByHcsSurfacesItsErrorText) {
  api_->scripts["Create"].result = {
      hresult::kInvalidJson,
      R"({"Error":-2143878899,"ErrorMessage":"The JSON document is invalid.",)"
      R"("ErrorEvents":[{"Message":"Unknown field 'KernelCmdLine' at VirtualMachine.Chipset"}]})"};
  HcsVm& vm = MakeVm();
  try {
    vm.Create();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_EQ(e.hresult(), hresult::kInvalidJson);
    EXPECT_TRUE(Contains(e.what(), "HcsCreateComputeSystem failed: 0x8037010D")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "Unknown field 'KernelCmdLine'")) << e.what();
  }
  // The handle HCS handed out for the failed create was closed.
  EXPECT_EQ(api_->open_systems(), 0);
  EXPECT_THROW(vm.Start(), VmError);  // still "new": nothing to start
}

TEST_F(HcsVmTest, MalformedRuntimeIdFailsCreateAndTearsDown) {
  api_->scripts["GetProperties"].result = {hresult::kOk, R"({"Id":"x","RuntimeId":"garbage"})"};
  HcsVm& vm = MakeVm();
  try {
    vm.Create();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "RuntimeId")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "not a GUID")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "uvm-test-1")) << e.what();
  }
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(api_->open_systems(), 0);
  // A VM object whose created system was abandoned is spent.
  try {
    vm.Create();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "cannot create in state closed")) << e.what();
  }
  EXPECT_FALSE(vm.WaitForExit(0ms).has_value());
}

TEST_F(HcsVmTest, MissingRuntimeIdFailsCreate) {
  api_->scripts["GetProperties"].result = {hresult::kOk, R"({"Id":"x","State":"Created"})"};
  HcsVm& vm = MakeVm();
  try {
    vm.Create();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "no RuntimeId")) << e.what();
  }
  EXPECT_EQ(api_->open_systems(), 0);
}

// One HRESULT failure at each step of Create: the error names the call and
// the code, and nothing stays open.
struct StepFailure {
  std::string name;
  std::function<void(FakeHcsApi&)> arrange;
  std::string expected;
};

void PrintTo(const StepFailure& failure, std::ostream* os) { *os << failure.name; }

class HcsVmCreateFailureTest : public HcsVmTest,
                               public ::testing::WithParamInterface<StepFailure> {};

TEST_P(HcsVmCreateFailureTest, FailsWithCallAndCode) {
  GetParam().arrange(*api_);
  HcsVm& vm = MakeVm();
  try {
    vm.Create();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), GetParam().expected)) << e.what();
  }
  EXPECT_THROW(vm.Start(), VmError);
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, HcsVmCreateFailureTest,
    ::testing::Values(
        StepFailure{"grant", [](FakeHcsApi& api) { api.grant_hr = hresult::kAccessDenied; },
                    "HcsGrantVmAccess failed: 0x80070005"},
        StepFailure{"operation", [](FakeHcsApi& api) { api.fail_create_operation = true; },
                    "HcsCreateOperation returned NULL"},
        StepFailure{"create_sync",
                    [](FakeHcsApi& api) { api.scripts["Create"].issue_hr = 0x8037010F; },
                    "HcsCreateComputeSystem failed: 0x8037010F (compute system already exists"},
        StepFailure{"create_timeout",
                    [](FakeHcsApi& api) { api.scripts["Create"].timeouts_before_result = 1; },
                    "HcsCreateComputeSystem failed: 0x80370118 (timeout"},
        StepFailure{"callback", [](FakeHcsApi& api) { api.set_callback_hr = 0x80370119; },
                    "HcsSetComputeSystemCallback failed: 0x80370119"},
        StepFailure{"properties",
                    [](FakeHcsApi& api) {
                      api.scripts["GetProperties"].result = {hresult::kSystemNotFound, ""};
                    },
                    "HcsGetComputeSystemProperties failed: 0x8037010E"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST_F(HcsVmTest, StartFailureTerminatesAndReportsBootFailed) {
  api_->scripts["Start"].result = {0x80370100, R"({"ErrorMessage":"kernel image rejected"})"};
  HcsVm& vm = MakeVm();
  vm.Create();
  try {
    vm.Start();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_TRUE(Contains(e.what(), "HcsStartComputeSystem failed: 0x80370100")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "kernel image rejected")) << e.what();
  }
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kBootFailed);
}

TEST_F(HcsVmTest, StartTimeoutCancelsAndWaitsBeforeClosing) {
  api_->scripts["Start"].timeouts_before_result = 1;
  api_->scripts["Start"].timeouts_after_cancel = 1;
  HcsVm& vm = MakeVm();
  vm.Create();
  try {
    vm.Start();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_EQ(e.hresult(), hresult::kOperationTimeout);
  }
  auto calls = api_->Calls();
  auto cancel = std::find(calls.begin(), calls.end(), "Cancel:Start");
  auto close = std::find(calls.begin(), calls.end(), "Close:Start");
  ASSERT_NE(cancel, calls.end());
  ASSERT_NE(close, calls.end());
  EXPECT_LT(cancel, close);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kBootFailed);
}

TEST_F(HcsVmTest, ExitDuringBootIsBootFailed) {
  agent_up_ = false;
  HcsVm& vm = MakeVm();
  vm.Create();
  vm.Start();
  std::thread crash([this] {
    std::this_thread::sleep_for(100ms);
    api_->FireEvent(kHcsEventSystemExited, R"({"Status":-2143878906,"ExitType":"UnexpectedExit"})");
  });
  const auto begin = std::chrono::steady_clock::now();
  try {
    vm.WaitAgentReady();
    ADD_FAILURE() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "exited before its agent was ready")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "UnexpectedExit")) << e.what();
  }
  crash.join();
  EXPECT_LT(testing::Elapsed(begin), 3s);  // noticed promptly, not at the boot timeout
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kBootFailed);
}

TEST_F(HcsVmTest, AgentNeverListeningTimesOutAndTerminates) {
  agent_up_ = false;
  config_.boot_timeout = 300ms;
  HcsVm& vm = MakeVm();
  vm.Create();
  vm.Start();
  try {
    vm.WaitAgentReady();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "agent not listening on vsock port 1024 within 300 ms"))
        << e.what();
    EXPECT_TRUE(Contains(e.what(), "fake hvsocket: connection refused")) << e.what();
  }
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kBootFailed);
}

TEST_F(HcsVmTest, BootTimeoutIncludesConsoleTail) {
  agent_up_ = false;
  config_.boot_timeout = 100ms;
  config_.debug_console = true;
  HcsVm& vm = MakeVm();
  vm.Create();
  EXPECT_TRUE(Contains(vm.document(), R"(\\\\.\\pipe\\uvmshim-uvm-test-1-console)"))
      << vm.document();
  vm.Start();
  // What a console capture would have written.
  dir_.WriteFile("state/console.log", "[    0.000000] Linux version 6.1\nKernel panic - not syncing");
  try {
    vm.WaitAgentReady();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "Kernel panic - not syncing")) << e.what();
  }
}

TEST_F(HcsVmTest, CrashAfterReady) {
  HcsVm& vm = StartedVm();
  api_->FireEvent(kHcsEventSystemExited, R"({"Status":-2143878906,"ExitType":"UnexpectedExit"})");
  auto exit = vm.WaitForExit(1s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->reason, ExitReason::kCrashed);
  EXPECT_TRUE(Contains(exit->detail, "UnexpectedExit")) << exit->detail;
  EXPECT_TRUE(Contains(exit->detail, "0x80370106")) << exit->detail;
}

TEST_F(HcsVmTest, GuestPowerOffAfterReadyIsShutdown) {
  HcsVm& vm = StartedVm();
  api_->FireEvent(kHcsEventSystemExited, R"({"Status":0,"ExitType":"GracefulExit"})");
  EXPECT_EQ(vm.WaitForExit(1s)->reason, ExitReason::kShutdown);
}

TEST_F(HcsVmTest, ServiceDisconnectIsCrash) {
  HcsVm& vm = StartedVm();
  api_->FireEvent(kHcsEventServiceDisconnect, "");
  auto exit = vm.WaitForExit(1s);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->reason, ExitReason::kCrashed);
  EXPECT_TRUE(Contains(exit->detail, "Host Compute Service")) << exit->detail;
}

TEST_F(HcsVmTest, TerminateIsTerminated) {
  HcsVm& vm = StartedVm();
  EXPECT_FALSE(vm.WaitForExit(10ms).has_value());
  vm.Terminate();
  auto exit = vm.WaitForExit(0ms);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->reason, ExitReason::kTerminated);
  vm.Terminate();  // idempotent
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
}

TEST_F(HcsVmTest, StopEscalatesToTerminateWhenShutdownTimesOut) {
  HcsVm& vm = StartedVm();
  api_->scripts["ShutDown"].timeouts_before_result = 1;
  vm.Stop(200ms);
  auto calls = api_->Calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(), "Cancel:ShutDown"), calls.end());
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kShutdown);  // Stop() ended it
}

TEST_F(HcsVmTest, StopTerminatesWhenShutdownIsRefused) {
  HcsVm& vm = StartedVm();
  api_->scripts["ShutDown"].issue_hr = 0x80370120;  // not configured for shutdown
  vm.Stop(1s);
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kShutdown);
}

TEST_F(HcsVmTest, TerminateFailureIsReported) {
  HcsVm& vm = StartedVm();
  api_->scripts["Terminate"].issue_hr = hresult::kAccessDenied;
  try {
    vm.Terminate();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_TRUE(Contains(e.what(), "HcsTerminateComputeSystem failed: 0x80070005")) << e.what();
  }
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kRunning);
  api_->scripts["Terminate"].issue_hr = hresult::kOk;  // lets the destructor clean up
}

TEST_F(HcsVmTest, StopTerminatesWhenGuestIgnoresShutdown) {
  api_->exit_on_shutdown = false;  // the request completes but the VM stays up
  HcsVm& vm = StartedVm();
  const auto begin = std::chrono::steady_clock::now();
  vm.Stop(300ms);
  EXPECT_GE(testing::Elapsed(begin), 250ms);
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kShutdown);
}

TEST_F(HcsVmTest, TerminateWithoutExitEventStillRecordsExit) {
  api_->exit_on_terminate = false;
  HcsVm& vm = StartedVm();
  vm.Terminate();
  auto exit = vm.WaitForExit(0ms);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->reason, ExitReason::kTerminated);
  EXPECT_TRUE(Contains(exit->detail, "no exit event")) << exit->detail;
}

TEST_F(HcsVmTest, TerminateOfAlreadyStoppedSystemIsFine) {
  HcsVm& vm = StartedVm();
  api_->exit_on_terminate = false;
  api_->scripts["Terminate"].result = {hresult::kSystemAlreadyStopped, ""};
  EXPECT_NO_THROW(vm.Terminate());
  EXPECT_EQ(vm.exit_info().reason, ExitReason::kTerminated);
}

TEST_F(HcsVmTest, DestructorTerminatesRunningVm) {
  StartedVm();
  vm_.reset();
  EXPECT_EQ(api_->CountCalls("Terminate"), 1);
  EXPECT_EQ(api_->open_systems(), 0);
}

TEST_F(HcsVmTest, InvalidStateTransitions) {
  HcsVm& vm = MakeVm();
  try {
    vm.Start();
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "cannot start in state new")) << e.what();
  }
  EXPECT_THROW(vm.WaitAgentReady(), VmError);
  EXPECT_FALSE(vm.WaitForExit(0ms).has_value());
  vm.Create();
  EXPECT_THROW(vm.Create(), VmError);
}

// Issue #16: AttachStorage (the UtilityVm method the host calls before the
// agent's MountGuestStorage) hot-adds through the same Modify documents and
// says where the guest finds the storage; LUN 0 (the rootfs disk's) and the
// rootfs share's name are refused before HCS is asked anything.
TEST_F(HcsVmTest, AttachStorageHotAddsAndLocatesForTheAgent) {
  HcsVm& vm = StartedVm();
  UtilityVm& generic = vm;
  const auto share = dir_.path() / "data";
  std::filesystem::create_directory(share);
  HostStorage directory;
  directory.kind = HostStorage::Kind::kDirectory;
  directory.host_path = share;
  directory.share_name = "data1";
  const GuestStorageLocation plan9 = generic.AttachStorage(directory);
  EXPECT_EQ(plan9.kind, GuestStorageLocation::Kind::kPlan9Share);
  EXPECT_EQ(plan9.share, "data1");
  EXPECT_EQ(plan9.vsock_port, kPlan9Port);

  HostStorage disk;
  disk.kind = HostStorage::Kind::kDisk;
  disk.host_path = dir_.WriteFile("scratch.vhdx", "vhd");
  disk.read_only = false;
  disk.lun = 2;
  const GuestStorageLocation scsi = generic.AttachStorage(disk);
  EXPECT_EQ(scsi.kind, GuestStorageLocation::Kind::kScsiDisk);
  EXPECT_EQ(scsi.controller, 0u);
  EXPECT_EQ(scsi.lun, 2u);

  auto docs = api_->modify_documents();
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], BuildAddPlan9ShareRequest("data1", share.string(), true));
  EXPECT_EQ(docs[1], BuildAddScsiDiskRequest(2, disk.host_path.string(), false));

  disk.lun = 0;
  try {
    generic.AttachStorage(disk);
    FAIL() << "no exception";
  } catch (const VmError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(Contains(e.what(), "lun 0")) << e.what();
  }
  directory.share_name = "rootfs";
  EXPECT_THROW(generic.AttachStorage(directory), VmError);
  EXPECT_EQ(api_->modify_documents().size(), 2u) << "refused before any Modify";
}

TEST_F(HcsVmTest, HotPlugSharesAndDisks) {
  HcsVm& vm = StartedVm();
  const auto share = dir_.path() / "share";
  std::filesystem::create_directory(share);
  vm.AddPlan9Share("s1", share, /*read_only=*/true);
  const auto disk = dir_.WriteFile("data.vhdx", "vhd");
  vm.AddScsiDisk(1, disk, /*read_only=*/false);
  vm.RemoveScsiDisk(1);
  vm.RemovePlan9Share("s1");
  auto docs = api_->modify_documents();
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0], BuildAddPlan9ShareRequest("s1", share.string(), true));
  EXPECT_EQ(docs[1], BuildAddScsiDiskRequest(1, disk.string(), false));
  EXPECT_EQ(docs[2], BuildRemoveScsiDiskRequest(1));
  EXPECT_EQ(docs[3], BuildRemovePlan9ShareRequest("s1"));
  EXPECT_EQ(api_->grants().back().second, disk.string());  // the VHD was granted first

  EXPECT_THROW(vm.AddPlan9Share("s2", dir_.path() / "missing", false), VmError);
  api_->scripts["Modify"].result = {hresult::kInvalidArg, R"({"ErrorMessage":"bad LUN"})"};
  try {
    vm.AddScsiDisk(99, disk, false);
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_TRUE(Contains(e.what(), "HcsModifyComputeSystem failed: 0x80070057")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "bad LUN")) << e.what();
  }
}

TEST_F(HcsVmTest, RootfsAttachmentByPathKind) {
  EXPECT_EQ(HcsVm::RootfsKindFor(""), RootfsKind::kNone);
  EXPECT_EQ(HcsVm::RootfsKindFor("/c/rootfs"), RootfsKind::kPlan9Share);
  EXPECT_EQ(HcsVm::RootfsKindFor("/c/rootfs.VHDX"), RootfsKind::kScsiDisk);
  EXPECT_EQ(HcsVm::RootfsKindFor("/c/rootfs.vhd"), RootfsKind::kScsiDisk);

  const auto rootfs = dir_.path() / "rootfs";
  std::filesystem::create_directory(rootfs);
  config_.rootfs_dir = rootfs;
  HcsVm& vm = MakeVm();
  vm.Create();
  EXPECT_TRUE(Contains(vm.document(), "uvm.rootfs=9p:rootfs:564")) << vm.document();
  EXPECT_EQ(api_->grants().size(), 2u);  // directories are not granted, files are
}

}  // namespace
}  // namespace uvmshim::uvm::hcs
