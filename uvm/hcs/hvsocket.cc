#include "uvm/hcs/hvsocket.h"

#include <cstring>
#include <string>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#include <hvsocket.h>

#include <cstddef>
#endif

namespace uvmshim::uvm::hcs {

Guid VsockPortServiceId(std::uint32_t port) {
  Guid guid = kHvGuidVsockTemplate;
  guid.data1 = port;
  return guid;
}

std::optional<std::uint32_t> VsockPortFromServiceId(const Guid& service_id) {
  Guid masked = service_id;
  masked.data1 = 0;
  if (masked != kHvGuidVsockTemplate) return std::nullopt;
  return service_id.data1;
}

std::array<std::uint8_t, kSockaddrHvSize> PackSockaddrHv(const Guid& vm_id,
                                                         const Guid& service_id) {
  std::array<std::uint8_t, kSockaddrHvSize> out{};
  const auto family = static_cast<std::uint16_t>(kAfHyperV);
  out[kSockaddrHvFamilyOffset] = static_cast<std::uint8_t>(family & 0xFF);
  out[kSockaddrHvFamilyOffset + 1] = static_cast<std::uint8_t>(family >> 8);
  // Reserved stays zero.
  auto vm = ToLittleEndianBytes(vm_id);
  auto service = ToLittleEndianBytes(service_id);
  std::memcpy(out.data() + kSockaddrHvVmIdOffset, vm.data(), vm.size());
  std::memcpy(out.data() + kSockaddrHvServiceIdOffset, service.data(), service.size());
  return out;
}

#ifdef _WIN32

// The platform-neutral layout above must be Windows' own.
static_assert(sizeof(SOCKADDR_HV) == kSockaddrHvSize);
static_assert(offsetof(SOCKADDR_HV, Family) == kSockaddrHvFamilyOffset);
static_assert(offsetof(SOCKADDR_HV, Reserved) == kSockaddrHvReservedOffset);
static_assert(offsetof(SOCKADDR_HV, VmId) == kSockaddrHvVmIdOffset);
static_assert(offsetof(SOCKADDR_HV, ServiceId) == kSockaddrHvServiceIdOffset);
static_assert(HV_PROTOCOL_RAW == kHvProtocolRaw);

net::Socket ConnectHvSocket(const Guid& vm_id, const Guid& service_id,
                            std::chrono::milliseconds timeout) {
  const auto bytes = PackSockaddrHv(vm_id, service_id);
  SOCKADDR_HV address;
  std::memcpy(&address, bytes.data(), sizeof address);
  std::string what = "hvsocket connect to VM " + ToString(vm_id) + " service " +
                     ToString(service_id);
  if (auto port = VsockPortFromServiceId(service_id)) {
    what += " (vsock port " + std::to_string(*port) + ")";
  }
  return net::ConnectWithTimeout(kAfHyperV, SOCK_STREAM, kHvProtocolRaw, &address, sizeof address,
                                 timeout, what);
}

std::unique_ptr<net::ByteStream> DialGuestVsock(const Guid& vm_id, std::uint32_t port,
                                                std::chrono::milliseconds timeout) {
  return std::make_unique<net::SocketStream>(
      ConnectHvSocket(vm_id, VsockPortServiceId(port), timeout));
}

#endif  // _WIN32

}  // namespace uvmshim::uvm::hcs
