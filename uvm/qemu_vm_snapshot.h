// Memory snapshots of a QEMU utility VM (the warm pool, issue #15): what the
// command line needs so that a share can be hot-added after a restore, and
// the checks on a snapshot's path. QemuVm::SaveSnapshot / HotAddShare are in
// qemu_vm_snapshot.cc.
#pragma once

#include <filesystem>
#include <string>

#include "uvm/qemu/command_line.h"

namespace uvmshim::uvm {

// The PCIe root port the share is hot-plugged into (q35's root bus takes no
// hot-plug) and the shared memfd vhost-user-fs needs for guest RAM.
inline constexpr const char* kShareHotplugPort = "shareport";
QemuDevice HotplugShareDevices(unsigned memory_mb);

// QEMU runs `exec:` URIs through /bin/sh: the path must be absolute and made
// of [A-Za-z0-9/._+-] only. Throws VmError naming `who` and the path.
void CheckSnapshotPath(const std::filesystem::path& file, const std::string& who);

}  // namespace uvmshim::uvm
