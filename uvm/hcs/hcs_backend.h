// The Windows HCS backend, wired: ComputeCore.dll for HCS, Hyper-V sockets
// to the guest agent, a loopback relay for gRPC, the console pipe capture.
// Windows only.
#pragma once

#ifdef _WIN32

#include <memory>

#include "uvm/hcs/hcs_vm.h"
#include "uvm/hcs/socket_stream.h"
#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {

// A UtilityVm run by HCS. AgentTarget() is "ipv4:127.0.0.1:PORT": gRPC C++
// cannot adopt a Hyper-V socket on Windows, so a relay owned by the VM object
// accepts loopback TCP connections from this process only and pumps each to
// a new hvsocket connection to (RuntimeId, vsock port options.agent_vsock_port).
// Throws VmError when ComputeCore.dll is unavailable.
std::unique_ptr<HcsVm> MakeHcsUtilityVm(VmConfig config, HcsVmOptions options = {});

// True when the loopback TCP connection from `peer.port` to our listening
// `peer.local_port` belongs to this process (GetExtendedTcpTable owner PID).
// The relay refuses every other local process: the agent is root in the VM.
bool IsLoopbackPeerInThisProcess(const net::PeerAddress& peer);

// The absolute path as UTF-8, the form HcsApi and the documents take.
std::string WindowsPathUtf8(const std::filesystem::path& path);

}  // namespace uvmshim::uvm::hcs

#endif  // _WIN32
