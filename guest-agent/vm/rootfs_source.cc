#include "guest-agent/vm/rootfs_source.h"

#include <charconv>
#include <stdexcept>
#include <vector>

namespace uvmshim::agent::vm {
namespace {

std::vector<std::string_view> SplitColons(std::string_view text) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto colon = text.find(':');
    parts.push_back(text.substr(0, colon));
    if (colon == std::string_view::npos) return parts;
    text.remove_prefix(colon + 1);
  }
}

[[noreturn]] void Invalid(std::string_view value, const std::string& why) {
  throw std::invalid_argument("kernel parameter uvm.rootfs=" + std::string(value) + ": " + why);
}

std::uint32_t Number(std::string_view value, std::string_view field, std::string_view text,
                     std::uint32_t max) {
  std::uint32_t number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || number > max)
    Invalid(value, std::string(field) + " \"" + std::string(text) + "\" is not a number in 0.." +
                       std::to_string(max));
  return number;
}

}  // namespace

RootfsSource ParseRootfsSource(std::string_view value) {
  RootfsSource source;
  if (value.empty()) return source;
  const auto parts = SplitColons(value);
  if (parts[0] == "9p") {
    if (parts.size() != 3) Invalid(value, "expected 9p:SHARE:PORT");
    if (parts[1].empty()) Invalid(value, "empty Plan9 share name");
    source.kind = RootfsSource::Kind::kPlan9Vsock;
    source.tag = parts[1];
    // Port 0 and -1 are VMADDR_PORT_ANY-like values no server listens on.
    source.vsock_port = Number(value, "vsock port", parts[2], 0xFFFFFFFEu);
    if (source.vsock_port == 0) Invalid(value, "vsock port 0 is not a server port");
  } else if (parts[0] == "scsi") {
    if (parts.size() != 3) Invalid(value, "expected scsi:CONTROLLER:LUN");
    source.kind = RootfsSource::Kind::kScsiDisk;
    // Hyper-V offers 4 SCSI controllers with 64 LUNs each.
    source.scsi_controller = Number(value, "SCSI controller", parts[1], 3);
    source.scsi_lun = Number(value, "SCSI LUN", parts[2], 63);
  } else if (parts[0] == "virtiofs") {
    if (parts.size() != 2 || parts[1].empty()) Invalid(value, "expected virtiofs:TAG");
    source.kind = RootfsSource::Kind::kVirtiofs;
    source.tag = parts[1];
  } else {
    // A bare virtiofs tag (what the QEMU backend passes). Tags never hold a
    // colon, so a colon here is a misspelt transport.
    if (parts.size() != 1) Invalid(value, "unknown transport \"" + std::string(parts[0]) +
                                              "\" (expected 9p, scsi or virtiofs)");
    source.kind = RootfsSource::Kind::kVirtiofs;
    source.tag = value;
  }
  return source;
}

std::string Describe(const RootfsSource& source) {
  switch (source.kind) {
    case RootfsSource::Kind::kNone:
      return "";
    case RootfsSource::Kind::kVirtiofs:
      return "virtiofs:" + source.tag;
    case RootfsSource::Kind::kPlan9Vsock:
      return "9p:" + source.tag + ":" + std::to_string(source.vsock_port);
    case RootfsSource::Kind::kScsiDisk:
      return "scsi:" + std::to_string(source.scsi_controller) + ":" + std::to_string(source.scsi_lun);
  }
  return "";
}

}  // namespace uvmshim::agent::vm
