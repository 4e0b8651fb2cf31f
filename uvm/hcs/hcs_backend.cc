#include "uvm/hcs/hcs_backend.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <iphlpapi.h>

#include <spdlog/spdlog.h>

#include <vector>

#include "uvm/hcs/computecore_api.h"
#include "uvm/hcs/console_pipe_win.h"
#include "uvm/hcs/host_build.h"
#include "uvm/hcs/hvsocket.h"

namespace uvmshim::uvm::hcs {

bool IsLoopbackPeerInThisProcess(const net::PeerAddress& peer) {
  std::vector<unsigned char> buffer;
  DWORD size = 0;
  DWORD rc = ERROR_INSUFFICIENT_BUFFER;
  // The table can grow between the two calls: retry a few times.
  for (int attempt = 0; attempt < 4 && rc == ERROR_INSUFFICIENT_BUFFER; ++attempt) {
    buffer.resize(size + 16 * sizeof(MIB_TCPROW_OWNER_PID));
    size = static_cast<DWORD>(buffer.size());
    rc = GetExtendedTcpTable(buffer.data(), &size, FALSE, AF_INET,
                             TCP_TABLE_OWNER_PID_CONNECTIONS, 0);
  }
  if (rc != NO_ERROR) {
    spdlog::warn("relay peer check: GetExtendedTcpTable failed: error {}", rc);
    return false;  // refuse when ownership cannot be proven
  }
  const auto* table = reinterpret_cast<const MIB_TCPTABLE_OWNER_PID*>(buffer.data());
  const DWORD self = GetCurrentProcessId();
  for (DWORD i = 0; i < table->dwNumEntries; ++i) {
    const MIB_TCPROW_OWNER_PID& row = table->table[i];
    // Ports sit in network byte order in the low 16 bits.
    const auto local_port = ntohs(static_cast<u_short>(row.dwLocalPort));
    const auto remote_port = ntohs(static_cast<u_short>(row.dwRemotePort));
    if (ntohl(row.dwLocalAddr) == INADDR_LOOPBACK && local_port == peer.port &&
        remote_port == peer.local_port) {
      return row.dwOwningPid == self;
    }
  }
  return false;
}

std::string WindowsPathUtf8(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  return WideToUtf8(absolute.native());
}

std::unique_ptr<HcsVm> MakeHcsUtilityVm(VmConfig config, HcsVmOptions options) {
  HcsVmDeps deps;
  deps.api = std::make_shared<ComputeCoreApi>();
  deps.dial_guest = [](const Guid& runtime_id, std::uint32_t port,
                       std::chrono::milliseconds timeout) {
    return DialGuestVsock(runtime_id, port, timeout);
  };
  deps.make_relay_listener = [] { return std::make_unique<net::TcpLoopbackListener>(0); };
  deps.relay_peer_filter = IsLoopbackPeerInThisProcess;
  deps.capture_console = StartConsolePipeCapture;
  deps.host_path_string = WindowsPathUtf8;
  deps.probe_host = ProbeWindowsHost;
  return std::make_unique<HcsVm>(std::move(config), std::move(options), std::move(deps));
}

}  // namespace uvmshim::uvm::hcs
