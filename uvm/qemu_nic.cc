#include "uvm/qemu_nic.h"

#include <fcntl.h>

#include <fmt/format.h>

#include <cctype>

namespace uvmshim::uvm {

namespace {

bool IsMac(const std::string& text) {
  if (text.size() != 17) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i % 3 == 2 ? text[i] != ':' : !std::isxdigit(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

}  // namespace

void ValidateNics(const std::vector<VmNic>& nics, const std::string& who) {
  constexpr std::size_t kMaxNics = 8;
  if (nics.size() > kMaxNics)
    throw VmError(fmt::format("{}: {} network cards, at most {}", who, nics.size(), kMaxNics));
  for (std::size_t i = 0; i < nics.size(); ++i) {
    const auto& nic = nics[i];
    if (!IsMac(nic.mac)) throw VmError(fmt::format("{}: nics[{}].mac \"{}\" is not a MAC address", who, i, nic.mac));
    // The low bit of the first byte marks multicast: never a card's address.
    if (std::stoi(nic.mac.substr(0, 2), nullptr, 16) & 1)
      throw VmError(fmt::format("{}: nics[{}].mac {} is a multicast address", who, i, nic.mac));
    if (nic.mtu != 0 && (nic.mtu < 68 || nic.mtu > 65535))
      throw VmError(fmt::format("{}: nics[{}].mtu {} is out of range (68-65535)", who, i, nic.mtu));
    if (nic.tap_fd < 0 || ::fcntl(nic.tap_fd, F_GETFD) < 0)
      throw VmError(fmt::format("{}: nics[{}].tap_fd {} is not an open file descriptor", who, i, nic.tap_fd));
  }
}

std::vector<std::string> QemuNicArguments(const std::vector<VmNic>& nics) {
  std::vector<std::string> args;
  for (std::size_t i = 0; i < nics.size(); ++i) {
    const auto& nic = nics[i];
    args.insert(args.end(), {"-netdev", fmt::format("tap,id=net{},fd={},vhost=off", i, nic.tap_fd)});
    // romfile= : no PXE option ROM to load (qboot never network-boots).
    std::string device = fmt::format("virtio-net-pci,netdev=net{},mac={},romfile=", i, nic.mac);
    if (nic.mtu) device += fmt::format(",host_mtu={}", nic.mtu);
    args.insert(args.end(), {"-device", device});
  }
  return args;
}

std::vector<int> NicFds(const std::vector<VmNic>& nics) {
  std::vector<int> fds;
  for (const auto& nic : nics) fds.push_back(nic.tap_fd);
  return fds;
}

}  // namespace uvmshim::uvm
