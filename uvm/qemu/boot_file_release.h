// Drops the pages of the boot files (kernel, initrd) from a running QEMU.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace uvmshim::uvm {

// QEMU maps -kernel and -initrd for the VM's whole life: the PVH loader keeps
// the ELF file as its ROM image for a reset and fw_cfg serves the initrd from
// the mapping. After the guest booted nothing reads them again (-no-reboot:
// a reset ends the VM), yet every page the boot read stays in QEMU's RSS
// (~19 MiB of page cache for our kernel's vmlinux and initrd). MADV_PAGEOUT
// (process_madvise from the shim) unmaps those clean file pages and lets the
// host reclaim them; a later read faults them back in from the file.
struct BootFileRelease {
  std::uint64_t bytes = 0;  // size of the ranges handed to MADV_PAGEOUT
  std::string error;        // empty when every range was handed over
};

// Best effort: needs process_madvise (Linux 5.10) and CAP_SYS_NICE; the
// reason is returned, not thrown (the VM runs the same either way).
BootFileRelease ReleaseBootFileMappings(pid_t vmm, const std::vector<std::filesystem::path>& files);

}  // namespace uvmshim::uvm
