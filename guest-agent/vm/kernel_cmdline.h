// Settings of the agent as PID 1, read from the kernel command line so that
// /init needs no arguments. Recognised parameters (others are ignored):
//   uvm.listen=ADDR[,ADDR...]  listen addresses (repeatable), e.g.
//                              serial:///dev/virtio-ports/agent or vsock://1024
//   uvm.log=LEVEL              agent log level (trace ... off), default info
//   uvm.rootfs=SOURCE          the container rootfs mounted at kGuestRootfsPath:
//                              a virtiofs tag, 9p:SHARE:PORT or scsi:CONTROLLER:LUN
//                              (rootfs_source.h; checked when it is mounted, so a
//                              bad value is reported to the host, not fatal)
//   uvm.rootfs_ro=0|1          mount that rootfs read-only
//   uvm.share=TAG              virtiofs tag mounted at kGuestSharePath (the
//                              sandbox share: rootfs and volumes of containers)
//   uvm.modules=off            skip loading kernel modules (debugging)
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace uvmshim::agent::vm {

struct VmSettings {
  std::vector<std::string> listen;
  std::string log_level = "info";
  std::string rootfs_tag;  // uvm.rootfs as given: see rootfs_source.h
  bool rootfs_read_only = false;
  std::string share_tag;
  bool load_modules = true;
  // uvm.stdio: the bulk stdio port (guest-agent/bulk_output_port.h), or "".
  std::string stdio_port;
  bool warm_up = false;  // uvm.warmup=1: run a throw-away container before serving (opt-in, warm_up.h)
};

// Splits a command line as the kernel does: spaces separate, double quotes
// group ("a b" keeps the space, the quotes are dropped).
std::vector<std::string> SplitKernelCmdline(std::string_view cmdline);

// Throws std::invalid_argument naming the parameter on a malformed value.
VmSettings ParseVmSettings(std::string_view cmdline);

}  // namespace uvmshim::agent::vm
