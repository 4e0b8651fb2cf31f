// `uvmctl hcs-document`: prints the HCS schema v2 document uvmshim would send
// to HcsCreateComputeSystem on Windows (a dry run to read and diff).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace uvmshim::uvmctl {

struct HcsDocumentOptions {
  std::string kernel;
  std::string initrd;
  unsigned memory_mb = 1024;
  unsigned cpus = 2;
  std::string console_pipe;
  std::string rootfs_share;  // a host directory for the Plan9 share
  std::string rootfs_vhd;    // or a VHD for SCSI
  std::string cmdline_extra;
  unsigned host_build = 0;               // required: decides the boot path
  unsigned host_logical_processors = 0;  // 0 = no clamp
};

CLI::App* AddHcsDocumentCommand(CLI::App& app, HcsDocumentOptions& options);
int PrintHcsDocument(const HcsDocumentOptions& options);

}  // namespace uvmshim::uvmctl
