// Hyper-V sockets (AF_HYPERV) as the host side sees them: addresses are
// (VmId, ServiceId) GUID pairs; a Linux guest's AF_VSOCK port N is the
// service GUID NNNNNNNN-facb-11e6-bd58-64006a7986d3.
//
// The addressing and the SOCKADDR_HV byte layout are platform-neutral (tested
// on Linux); ConnectHvSocket exists only in the Windows build.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "uvm/hcs/guid.h"
#include "uvm/hcs/socket_stream.h"

namespace uvmshim::uvm::hcs {

// mingw-w64 10's headers lack AF_HYPERV; 34 is its value in Windows' ws2def.h.
inline constexpr int kAfHyperV = 34;
inline constexpr int kHvProtocolRaw = 1;

// Well-known VmIds.
inline constexpr Guid kHvGuidWildcard{};
inline constexpr Guid kHvGuidChildren{0x90db8b89, 0x0d35, 0x4f79,
                                      {0x8c, 0xe9, 0x49, 0xea, 0x0a, 0xc8, 0xb7, 0xcd}};
inline constexpr Guid kHvGuidLoopback{0xe0e16197, 0xdd56, 0x4a10,
                                      {0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38}};
inline constexpr Guid kHvGuidParent{0xa42e7cda, 0xd03f, 0x480c,
                                    {0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78}};
// Service template for Linux vsock ports: data1 carries the port.
inline constexpr Guid kHvGuidVsockTemplate{0x00000000, 0xfacb, 0x11e6,
                                           {0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3}};

Guid VsockPortServiceId(std::uint32_t port);
// The port when `service_id` is a vsock-template GUID, else nullopt.
std::optional<std::uint32_t> VsockPortFromServiceId(const Guid& service_id);

// SOCKADDR_HV { ADDRESS_FAMILY Family; USHORT Reserved; GUID VmId; GUID ServiceId; }
inline constexpr std::size_t kSockaddrHvSize = 36;
inline constexpr std::size_t kSockaddrHvFamilyOffset = 0;
inline constexpr std::size_t kSockaddrHvReservedOffset = 2;
inline constexpr std::size_t kSockaddrHvVmIdOffset = 4;
inline constexpr std::size_t kSockaddrHvServiceIdOffset = 20;

// The address bytes exactly as Windows (little-endian) lays SOCKADDR_HV out;
// the Windows build copies these bytes into the SOCKADDR_HV it connects with.
std::array<std::uint8_t, kSockaddrHvSize> PackSockaddrHv(const Guid& vm_id,
                                                         const Guid& service_id);

#ifdef _WIN32
// socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW) connected to
// (vm_id, service_id) within `timeout` (non-blocking connect + select).
// Throws net::SocketError naming the VM and service.
net::Socket ConnectHvSocket(const Guid& vm_id, const Guid& service_id,
                            std::chrono::milliseconds timeout);

// ConnectHvSocket to the guest's vsock `port`, wrapped as a stream.
std::unique_ptr<net::ByteStream> DialGuestVsock(const Guid& vm_id, std::uint32_t port,
                                                std::chrono::milliseconds timeout);
#endif

}  // namespace uvmshim::uvm::hcs
