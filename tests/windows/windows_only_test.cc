// Tests of the Windows-only code. Under wine most of it runs for real
// (Winsock, named pipes, GetExtendedTcpTable, UTF-16); what needs Hyper-V
// (ComputeCore.dll, AF_HYPERV) is checked to fail cleanly with a useful
// message, and to work when the test runs on a real Windows host.
#include <winsock2.h>
#include <windows.h>
#include <hvsocket.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "test_util.h"
#include "uvm/hcs/computecore_api.h"
#include "uvm/hcs/console_pipe_win.h"
#include "uvm/hcs/hcs_backend.h"
#include "uvm/hcs/host_build.h"
#include "uvm/hcs/hvsocket.h"
#include "uvm/hcs/socket_stream.h"

namespace uvmshim::uvm::hcs {
namespace {

using namespace std::chrono_literals;

bool Contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

// RtlGetVersion and GetActiveProcessorCount answer under wine too (wine
// reports the Windows version it emulates); on a real host the build is the
// one `winver` shows.
TEST(WindowsHostProbe, ReportsABuildAndTheProcessorCount) {
  const HostInfo host = ProbeWindowsHost();
  std::cout << "host build " << host.build << ", " << host.logical_processors << " logical processors\n";
  EXPECT_GT(host.build, 0u);
  EXPECT_GE(host.logical_processors, 1u);
  EXPECT_EQ(host.logical_processors, GetActiveProcessorCount(ALL_PROCESSOR_GROUPS));
}

TEST(WindowsUtf16, RoundTrip) {
  const std::string utf8 = "C:\\ProgramData\\uvmshim\\Gr\xC3\xBC\xC3\x9F" "e \xE2\x9C\x93";
  const std::wstring wide = Utf8ToWide(utf8);
  EXPECT_EQ(wide, L"C:\\ProgramData\\uvmshim\\Gr\u00FC\u00DFe \u2713");
  EXPECT_EQ(WideToUtf8(wide), utf8);
  EXPECT_EQ(Utf8ToWide(""), L"");
  EXPECT_THROW(Utf8ToWide("\xFF\xFE"), VmError);
}

TEST(WindowsHvSocket, PackedBytesAreTheWindowsStruct) {
  static_assert(sizeof(SOCKADDR_HV) == 36);
  const auto bytes = PackSockaddrHv(kHvGuidLoopback, VsockPortServiceId(2761));
  SOCKADDR_HV address;
  std::memcpy(&address, bytes.data(), sizeof address);
  EXPECT_EQ(address.Family, kAfHyperV);
  EXPECT_EQ(address.Reserved, 0);
  EXPECT_TRUE(IsEqualGUID(address.VmId, HV_GUID_LOOPBACK));
  GUID service = HV_GUID_VSOCK_TEMPLATE;
  service.Data1 = 2761;
  EXPECT_TRUE(IsEqualGUID(address.ServiceId, service));
  EXPECT_EQ(address.ServiceId.Data1, 0x00000ac9u);
}

TEST(WindowsHvSocket, WellKnownGuidsMatchTheSdk) {
  auto same = [](const Guid& ours, const GUID& sdk) {
    return ours.data1 == sdk.Data1 && ours.data2 == sdk.Data2 && ours.data3 == sdk.Data3 &&
           std::memcmp(ours.data4.data(), sdk.Data4, 8) == 0;
  };
  EXPECT_TRUE(same(kHvGuidChildren, HV_GUID_CHILDREN));
  EXPECT_TRUE(same(kHvGuidLoopback, HV_GUID_LOOPBACK));
  EXPECT_TRUE(same(kHvGuidParent, HV_GUID_PARENT));
  EXPECT_TRUE(same(kHvGuidVsockTemplate, HV_GUID_VSOCK_TEMPLATE));
}

TEST(WindowsHvSocket, ConnectFailureNamesVmAndService) {
  net::SocketRuntime runtime;
  const Guid vm = *ParseGuid("3f2504e0-4f89-11d3-9a0c-0305e82c3301");  // no such VM
  const auto begin = std::chrono::steady_clock::now();
  try {
    ConnectHvSocket(vm, VsockPortServiceId(1024), 500ms);
    FAIL() << "connected to a VM that does not exist";
  } catch (const net::SocketError& e) {
    std::cout << "hvsocket: " << e.what() << "\n";
    EXPECT_TRUE(Contains(e.what(), "hvsocket connect to VM 3f2504e0-4f89-11d3-9a0c-0305e82c3301 "
                                   "service 00000400-facb-11e6-bd58-64006a7986d3 (vsock port 1024)"))
        << e.what();
  }
  EXPECT_LT(testing::Elapsed(begin), 5s);
}

TEST(WindowsComputeCore, LoadsOrSaysWhyNot) {
  try {
    ComputeCoreApi api;
    // A Windows host with HCS: an operation can be created and closed.
    HcsHandle op = api.CreateOperation();
    EXPECT_NE(op, nullptr);
    if (op != nullptr) api.CloseOperation(op);
  } catch (const VmError& e) {
    // wine, or Windows without the Hyper-V/Containers features.
    std::cout << "no HCS here: " << e.what() << "\n";
    EXPECT_TRUE(Contains(e.what(), "ComputeCore.dll")) << e.what();
  }
}

TEST(WindowsComputeCore, BackendFactoryNeedsComputeCore) {
  testing::TempDir dir;
  VmConfig config;
  config.id = "windows-test";
  config.kernel = dir.WriteFile("vmlinuz", "k");
  config.initrd = dir.WriteFile("initrd.img", "i");
  try {
    auto vm = MakeHcsUtilityVm(config);
    EXPECT_EQ(vm->AgentTarget(), "");  // no relay before Create()
  } catch (const VmError& e) {
    EXPECT_TRUE(Contains(e.what(), "ComputeCore.dll")) << e.what();
  }
}

TEST(WindowsPaths, AbsoluteUtf8) {
  const std::string path = WindowsPathUtf8("relative\\vmlinuz");
  ASSERT_GE(path.size(), 3u);
  EXPECT_EQ(path[1], ':') << path;
  EXPECT_EQ(path[2], '\\') << path;
  EXPECT_TRUE(Contains(path, "relative\\vmlinuz")) << path;
}

TEST(WindowsRelayPeer, OnlyThisProcessPasses) {
  net::TcpLoopbackListener listener(0);
  net::SocketStream client(net::ConnectTcpLoopback(listener.port(), 1s));
  net::PeerAddress peer;
  auto accepted = listener.Accept(1s, &peer);
  ASSERT_TRUE(accepted);
  EXPECT_EQ(peer.local_port, listener.port());
  EXPECT_TRUE(IsLoopbackPeerInThisProcess(peer)) << "peer port " << peer.port;
  net::PeerAddress unknown = peer;
  unknown.port = static_cast<std::uint16_t>(peer.port ^ 0x5555);
  EXPECT_FALSE(IsLoopbackPeerInThisProcess(unknown));
}

// A named pipe server standing in for HCS's COM1 pipe.
class PipeServer {
 public:
  explicit PipeServer(const std::wstring& name)
      : handle_(CreateNamedPipeW(name.c_str(), PIPE_ACCESS_OUTBOUND, PIPE_TYPE_BYTE | PIPE_WAIT, 1,
                                 4096, 4096, 0, nullptr)) {}
  ~PipeServer() { Close(); }
  bool valid() const { return handle_ != INVALID_HANDLE_VALUE; }
  bool WaitClient() {
    return ConnectNamedPipe(handle_, nullptr) || GetLastError() == ERROR_PIPE_CONNECTED;
  }
  bool Write(const std::string& data) {
    DWORD written = 0;
    return WriteFile(handle_, data.data(), static_cast<DWORD>(data.size()), &written, nullptr) &&
           written == data.size();
  }
  void Close() {
    if (handle_ != INVALID_HANDLE_VALUE) {
      FlushFileBuffers(handle_);
      CloseHandle(handle_);
      handle_ = INVALID_HANDLE_VALUE;
    }
  }

 private:
  HANDLE handle_;
};

std::string ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(WindowsConsolePipe, CopiesConsoleToLogUntilPipeBreaks) {
  testing::TempDir dir;
  const std::string pipe =
      "\\\\.\\pipe\\uvmshim-test-" + std::to_string(GetCurrentProcessId()) + "-console";
  PipeServer server(Utf8ToWide(pipe));
  ASSERT_TRUE(server.valid());
  std::atomic<int> first_bytes{0};
  const auto log = dir.path() / "console.log";
  auto capture = StartConsolePipeCapture(pipe, log, [&] { ++first_bytes; });
  ASSERT_TRUE(server.WaitClient());
  ASSERT_TRUE(server.Write("[    0.000000] Linux version\n"));
  ASSERT_TRUE(server.Write("uvm-agent: listening on vsock 1024\n"));
  server.Close();  // the VM went away
  capture.reset();  // joins the reader
  EXPECT_EQ(ReadFileText(log), "[    0.000000] Linux version\nuvm-agent: listening on vsock 1024\n");
  EXPECT_EQ(first_bytes.load(), 1);
}

TEST(WindowsConsolePipe, StopsWhileWaitingForThePipeOrForData) {
  testing::TempDir dir;
  const auto log = dir.path() / "console.log";
  {
    // The pipe never appears.
    auto capture = StartConsolePipeCapture("\\\\.\\pipe\\uvmshim-test-never", log, nullptr);
    std::this_thread::sleep_for(100ms);
  }
  const std::string pipe =
      "\\\\.\\pipe\\uvmshim-test-" + std::to_string(GetCurrentProcessId()) + "-idle";
  PipeServer server(Utf8ToWide(pipe));
  ASSERT_TRUE(server.valid());
  auto capture = StartConsolePipeCapture(pipe, log, nullptr);
  ASSERT_TRUE(server.WaitClient());
  std::this_thread::sleep_for(100ms);  // the reader now waits in ReadFile
  const auto begin = std::chrono::steady_clock::now();
  capture.reset();  // cancels the pending read and waits for it
  EXPECT_LT(testing::Elapsed(begin), 2s);
}

}  // namespace
}  // namespace uvmshim::uvm::hcs
