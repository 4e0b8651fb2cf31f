// HCS schema 2.1 JSON documents for a Linux utility VM: the create document,
// hot-plug (modify) requests, the properties query and the parsers for what
// HCS sends back. Platform-neutral (only strings in, strings out) so that
// `uvmctl hcs-document` and the tests run on Linux.
//
// Field names are spelled as HCS schema 2.1 / hcsshim's schema2 JSON tags.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "uvm/hcs/guid.h"
#include "uvm/hcs/host_build.h"
#include "uvm/hcs/hresult.h"

namespace uvmshim::uvm::hcs {

// vsock port the guest agent listens on (uvm.listen=vsock://PORT); the host
// dials it over hvsocket as service GUID <port>-facb-11e6-bd58-64006a7986d3.
inline constexpr std::uint32_t kDefaultAgentVsockPort = 1024;
// HCS's Plan9 file server listens on this vsock port (hcsshim's value).
inline constexpr std::uint32_t kPlan9Port = 564;
// The SCSI controller every document declares (controller 0 in hcsshim's
// list), so disks can be hot-added later.
inline constexpr std::string_view kScsiController0 = "df6d0690-79e5-55b6-a5ec-c1e2f77f580a";
// Only SYSTEM and the Administrators group may bind or connect hvsockets of
// this VM on the host side (D:P = protected DACL, FA = file all access).
inline constexpr std::string_view kHvSocketSecurityDescriptor = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";
// Plan9ShareFlags (schema2): Linux metadata (uid/gid/mode) and read-only.
inline constexpr int kPlan9FlagReadOnly = 0x1;
inline constexpr int kPlan9FlagLinuxMetadata = 0x4;

enum class RootfsKind {
  kNone,        // no container rootfs attached at boot
  kPlan9Share,  // a host directory served by HCS's Plan9 server (share "rootfs")
  kScsiDisk,    // a VHD/VHDX attached at SCSI controller 0, LUN 0
};

struct RootfsAttachment {
  RootfsKind kind = RootfsKind::kNone;
  std::string host_path;  // Windows path of the directory or the VHD(X)
  bool read_only = false;
};

struct UvmDocumentOptions {
  std::string owner = "uvmshim";
  std::string kernel_path;  // Windows path, e.g. C:\ProgramData\uvmshim\vmlinuz
  std::string initrd_path;  // Windows path of the initrd with uvm-agent as /init
  unsigned memory_mb = 1024;  // rounded up to a multiple of 2 (HCS wants 2 MB steps)
  bool allow_overcommit = true;
  unsigned cpus = 2;  // clamped to host.logical_processors (ClampVcpus)
  // The host's build decides the boot path (host_build.h): LinuxKernelDirect
  // from 18286, UEFI from a VmbFs share of the kernel's directory on
  // 17763..18285 (kernel and initrd must then share a directory), refused
  // below 17763 or when unknown.
  HostInfo host;
  // Serial console (COM1) as a named pipe, e.g. \\.\pipe\uvmshim-ID-console.
  // Empty = no console: the guest gets 8250_core.nr_uarts=0.
  std::string console_pipe;
  RootfsAttachment rootfs;
  std::uint32_t agent_vsock_port = kDefaultAgentVsockPort;
  std::string kernel_cmdline_extra;  // appended last
};

// Throws VmError for unusable options (empty paths, zero cpus/memory,
// console pipe not under \\.\pipe\, unknown or unsupported host build).
void ValidateUvmDocumentOptions(const UvmDocumentOptions& options);

// The kernel command line the document carries (under UEFI boot the EFI
// stub reads it from BootThis.OptionalData, after an initrd= argument).
std::string BuildKernelCmdLine(const UvmDocumentOptions& options);

// The HcsCreateComputeSystem document, pretty-printed with sorted keys (so
// equal options give byte-identical output).
std::string BuildUvmDocument(const UvmDocumentOptions& options);

// HcsModifyComputeSystem requests ({ResourcePath, RequestType, Settings}).
std::string BuildAddPlan9ShareRequest(std::string_view name, std::string_view host_path,
                                      bool read_only);
std::string BuildRemovePlan9ShareRequest(std::string_view name);
std::string BuildAddScsiDiskRequest(unsigned lun, std::string_view vhd_path, bool read_only);
std::string BuildRemoveScsiDiskRequest(unsigned lun);

// Query for HcsGetComputeSystemProperties that returns the basic properties
// (Id, RuntimeId, State, ...).
std::string BuildBasicPropertiesQuery();

// The VM's RuntimeId (the GUID hvsocket addresses use) from a properties
// document. Throws VmError saying what was wrong (not JSON, missing, not a GUID).
Guid ParseRuntimeId(std::string_view properties_document);

// Payload of HcsEventSystemExited: {"Status": HRESULT, "ExitType": "..."}.
struct SystemExitStatus {
  HResult status = hresult::kOk;
  std::string exit_type;  // "GracefulExit", "ForcedExit", "UnexpectedExit", or ""
  bool parsed = false;    // false when the event data was empty or not JSON
};
SystemExitStatus ParseSystemExitStatus(std::string_view event_data);

}  // namespace uvmshim::uvm::hcs
