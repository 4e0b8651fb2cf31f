#include "uvmctl/hcs_document_command.h"

#include <cstdio>
#include <stdexcept>

#include "uvm/hcs/hcs_document.h"

namespace uvmshim::uvmctl {

CLI::App* AddHcsDocumentCommand(CLI::App& app, HcsDocumentOptions& options) {
  auto* cmd = app.add_subcommand("hcs-document",
                                 "print the HCS schema 2.1 document for a Linux utility VM (dry run)");
  cmd->add_option("--kernel", options.kernel, "Windows path of the kernel")->required();
  cmd->add_option("--initrd", options.initrd, "Windows path of initrd.img")->required();
  cmd->add_option("--memory", options.memory_mb, "memory in MB")->capture_default_str();
  cmd->add_option("--cpus", options.cpus, "vCPUs")->capture_default_str();
  cmd->add_option("--console-pipe", options.console_pipe, "serial console named pipe (\\\\.\\pipe\\NAME)");
  auto* share = cmd->add_option("--rootfs-share", options.rootfs_share, "rootfs directory, as a Plan9 share");
  cmd->add_option("--rootfs-vhd", options.rootfs_vhd, "rootfs VHD(X), on SCSI")->excludes(share);
  cmd->add_option("--host-build", options.host_build,
                  "Windows build of the host (e.g. 17763, 18286, 26100): decides LinuxKernelDirect or UEFI boot")
      ->required();
  cmd->add_option("--host-cpus", options.host_logical_processors,
                  "logical processors of the host (vCPUs are clamped to it; 0 = no clamp)");
  cmd->add_option("--cmdline-extra", options.cmdline_extra, "appended to the kernel command line");
  return cmd;
}

int PrintHcsDocument(const HcsDocumentOptions& options) {
  uvm::hcs::UvmDocumentOptions doc;
  doc.kernel_path = options.kernel;
  doc.initrd_path = options.initrd;
  doc.memory_mb = options.memory_mb;
  doc.cpus = options.cpus;
  doc.console_pipe = options.console_pipe;
  doc.kernel_cmdline_extra = options.cmdline_extra;
  doc.host = {options.host_build, options.host_logical_processors};
  if (!options.rootfs_share.empty()) {
    doc.rootfs = {uvm::hcs::RootfsKind::kPlan9Share, options.rootfs_share, false};
  } else if (!options.rootfs_vhd.empty()) {
    doc.rootfs = {uvm::hcs::RootfsKind::kScsiDisk, options.rootfs_vhd, false};
  }
  uvm::hcs::ValidateUvmDocumentOptions(doc);
  std::fputs(uvm::hcs::BuildUvmDocument(doc).c_str(), stdout);
  return 0;
}

}  // namespace uvmshim::uvmctl
