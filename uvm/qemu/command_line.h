// The QEMU command line of a utility VM, built from plain inputs: no I/O, no
// probing (the caller decides KVM vs TCG, finds the binaries, picks the
// paths), so it is unit-tested against golden argument lists
// (tests/uvm/command_line_test.cc).
//
// To add a device: put its QEMU arguments in `extra_devices` (one
// QemuDevice each), e.g. a tap network card
//   {"-netdev", "tap,id=net0,fd=3", "-device", "virtio-net-pci,netdev=net0,mac=02:..."}
// or a balloon; accelerator properties (e.g. "tb-size=256" for TCG) go to
// `accel_properties`, kernel parameters to `kernel_params`.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace uvmshim::uvm {

// The bulk stdio port's virtio-serial name (guest-agent/bulk_output_port.h).
inline constexpr std::string_view kBulkStdioPortName = "uvmshim.stdio";

// One device (or any group of arguments that belong together), appended as is.
struct QemuDevice {
  std::vector<std::string> args;
};

struct QemuCommandInputs {
  std::string qemu_binary;  // argv[0]: the path found in PATH
  std::string vm_name;      // -name
  std::string machine = "q35";
  bool kvm = false;  // KVM with the host CPU, else TCG
  // Appended to the accelerator: "-accel tcg,tb-size=256".
  std::vector<std::string> accel_properties;
  std::filesystem::path bios;  // empty: QEMU's default firmware
  unsigned memory_mb = 256;
  unsigned cpus = 1;
  std::filesystem::path kernel;
  std::filesystem::path initrd;
  // Kernel parameters in order (joined with spaces for -append).
  std::vector<std::string> kernel_params;
  std::filesystem::path console_log;  // the serial console's file; empty: none
  std::filesystem::path qmp_socket;
  // virtio-serial ports the agent listens on ("agent", "debug").
  std::filesystem::path agent_socket;
  std::filesystem::path debug_socket;
  std::filesystem::path stdio_socket;  // the bulk stdio port "uvmshim.stdio"; empty: none
  // vhost-user-fs: virtiofsd's socket and the tag the guest mounts; empty
  // socket: no share.
  std::filesystem::path virtiofs_socket;
  std::string share_tag;
  std::vector<QemuDevice> extra_devices;  // last, in order
};

std::vector<std::string> BuildQemuCommandLine(const QemuCommandInputs& inputs);

}  // namespace uvmshim::uvm
