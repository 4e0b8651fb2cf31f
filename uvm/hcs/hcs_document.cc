#include "uvm/hcs/hcs_document.h"

#include <nlohmann/json.hpp>

#include <utility>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {
namespace {

using nlohmann::json;

constexpr std::string_view kPlan9SharesPath = "VirtualMachine/Devices/Plan9/Shares";
constexpr std::string_view kRootfsShareName = "rootfs";
constexpr unsigned kMinMemoryMb = 64;
constexpr unsigned kMaxCpus = 240;  // Hyper-V's limit for a Gen2 VM

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string ScsiAttachmentPath(unsigned lun) {
  return "VirtualMachine/Devices/Scsi/" + std::string(kScsiController0) + "/Attachments/" +
         std::to_string(lun);
}

json Plan9Share(std::string_view name, std::string_view host_path, bool read_only) {
  int flags = kPlan9FlagLinuxMetadata;
  if (read_only) flags |= kPlan9FlagReadOnly;
  return json{{"Name", name},
              {"AccessName", name},
              {"Path", host_path},
              {"Port", kPlan9Port},
              {"Flags", flags}};
}

json ScsiAttachment(std::string_view vhd_path, bool read_only) {
  return json{{"Type", "VirtualDisk"}, {"Path", vhd_path}, {"ReadOnly", read_only}};
}

std::string Dump(const json& doc) { return doc.dump(2) + "\n"; }

// "C:\dir\file" -> {"C:\dir", "file"}; Windows paths from HostPath use
// backslashes, tests may use slashes.
std::pair<std::string, std::string> SplitWindowsPath(const std::string& path) {
  const auto slash = path.find_last_of("\\/");
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// Below build 18286 HCS has no LinuxKernelDirect: the VM's UEFI firmware
// starts the kernel's EFI stub from a VmbFs share of the boot files'
// directory (hcsshim's fallback), and the stub loads the initrd from there.
json UefiChipset(const UvmDocumentOptions& options, const std::string& cmdline) {
  const auto [kernel_dir, kernel_file] = SplitWindowsPath(options.kernel_path);
  const auto [initrd_dir, initrd_file] = SplitWindowsPath(options.initrd_path);
  return json{{"Uefi",
               {{"BootThis",
                 {{"DevicePath", "\\" + kernel_file},
                  {"DeviceType", "VmbFs"},
                  {"VmbFsRootPath", kernel_dir},
                  {"OptionalData", "initrd=/" + initrd_file + " " + cmdline}}}}}};
}

}  // namespace

void ValidateUvmDocumentOptions(const UvmDocumentOptions& options) {
  if (options.kernel_path.empty()) throw VmError("HCS document: kernel path is empty");
  if (options.initrd_path.empty()) throw VmError("HCS document: initrd path is empty");
  if (options.memory_mb < kMinMemoryMb) {
    throw VmError("HCS document: memory " + std::to_string(options.memory_mb) +
                  " MB is below the minimum of " + std::to_string(kMinMemoryMb) + " MB");
  }
  const KernelBootMode boot = BootModeForBuild(options.host.build);
  if (boot == KernelBootMode::kUefiVmbFs &&
      SplitWindowsPath(options.kernel_path).first != SplitWindowsPath(options.initrd_path).first) {
    throw VmError("HCS document: Windows build " + std::to_string(options.host.build) +
                  " boots through UEFI from one VmbFs share (LinuxKernelDirect needs build " +
                  std::to_string(kKernelDirectMinimumBuild) + "): kernel \"" + options.kernel_path +
                  "\" and initrd \"" + options.initrd_path + "\" must be in the same directory");
  }
  if (options.cpus == 0 || options.cpus > kMaxCpus) {
    throw VmError("HCS document: cpu count " + std::to_string(options.cpus) +
                  " is outside 1.." + std::to_string(kMaxCpus));
  }
  if (!options.console_pipe.empty() && !StartsWith(options.console_pipe, R"(\\.\pipe\)")) {
    throw VmError("HCS document: console pipe \"" + options.console_pipe +
                  "\" is not a local named pipe (\\\\.\\pipe\\NAME)");
  }
  if (options.rootfs.kind != RootfsKind::kNone && options.rootfs.host_path.empty()) {
    throw VmError("HCS document: rootfs attachment has no host path");
  }
  if (options.agent_vsock_port == 0 || options.agent_vsock_port == 0xFFFFFFFFu) {
    throw VmError("HCS document: invalid agent vsock port " +
                  std::to_string(options.agent_vsock_port));
  }
}

std::string BuildKernelCmdLine(const UvmDocumentOptions& options) {
  // Without virtio-vsock's init the guest's AF_VSOCK binds to hv_sock.
  std::string cmdline = "initcall_blacklist=virtio_vsock_init";
  if (options.console_pipe.empty()) {
    // No console to read: stay quiet, and stop at once on a panic.
    cmdline += " 8250_core.nr_uarts=0 panic=-1 quiet";
  } else {
    // Debugging: the whole boot log and a panic's message stay on COM1.
    cmdline += " 8250_core.nr_uarts=1 8250_core.skip_txen_test=1 console=ttyS0,115200";
  }
  cmdline += " pci=off nr_cpus=" + std::to_string(ClampVcpus(options.cpus, options.host));
  cmdline += " uvm.listen=vsock://" + std::to_string(options.agent_vsock_port);
  switch (options.rootfs.kind) {
    case RootfsKind::kNone:
      break;
    case RootfsKind::kPlan9Share:
      // The agent dials the host's Plan9 server on vsock 564 and mounts
      // the share by its access name (9p, trans=fd).
      cmdline += " uvm.rootfs=9p:" + std::string(kRootfsShareName) + ":" +
                 std::to_string(kPlan9Port);
      break;
    case RootfsKind::kScsiDisk:
      cmdline += " uvm.rootfs=scsi:0:0";  // controller 0, LUN 0
      break;
  }
  if (options.rootfs.kind != RootfsKind::kNone && options.rootfs.read_only) {
    cmdline += " uvm.rootfs_ro=1";
  }
  if (!options.kernel_cmdline_extra.empty()) cmdline += " " + options.kernel_cmdline_extra;
  return cmdline;
}

std::string BuildUvmDocument(const UvmDocumentOptions& options) {
  ValidateUvmDocumentOptions(options);
  const std::string cmdline = BuildKernelCmdLine(options);
  const json chipset =
      BootModeForBuild(options.host.build) == KernelBootMode::kLinuxKernelDirect
          ? json{{"LinuxKernelDirect",
                  {{"KernelFilePath", options.kernel_path},
                   {"InitRdPath", options.initrd_path},
                   {"KernelCmdLine", cmdline}}}}
          : UefiChipset(options, cmdline);
  const unsigned memory_mb = (options.memory_mb + 1) / 2 * 2;

  json scsi_controller = json::object();
  json plan9 = json::object();
  switch (options.rootfs.kind) {
    case RootfsKind::kNone:
      break;
    case RootfsKind::kPlan9Share:
      plan9["Shares"] = json::array(
          {Plan9Share(kRootfsShareName, options.rootfs.host_path, options.rootfs.read_only)});
      break;
    case RootfsKind::kScsiDisk:
      scsi_controller["Attachments"] =
          json{{"0", ScsiAttachment(options.rootfs.host_path, options.rootfs.read_only)}};
      break;
  }

  json devices = {
      {"HvSocket",
       {{"HvSocketConfig",
         {{"DefaultBindSecurityDescriptor", kHvSocketSecurityDescriptor},
          {"DefaultConnectSecurityDescriptor", kHvSocketSecurityDescriptor}}}}},
      // Present even when empty so shares and disks can be hot-added.
      {"Plan9", plan9},
      {"Scsi", {{std::string(kScsiController0), scsi_controller}}},
  };
  if (!options.console_pipe.empty()) {
    devices["ComPorts"] = {{"0", {{"NamedPipe", options.console_pipe}}}};
  }

  json doc = {
      {"Owner", options.owner},
      {"SchemaVersion", {{"Major", 2}, {"Minor", 1}}},
      // The VM dies with its last handle: a crashed shim leaves no VM behind.
      {"ShouldTerminateOnLastHandleClosed", true},
      {"VirtualMachine",
       {
           {"StopOnReset", true},
           {"Chipset", chipset},
           {"ComputeTopology",
            {{"Memory", {{"SizeInMB", memory_mb}, {"AllowOvercommit", options.allow_overcommit}}},
             {"Processor", {{"Count", ClampVcpus(options.cpus, options.host)}}}}},
           {"Devices", devices},
       }},
  };
  return Dump(doc);
}

std::string BuildAddPlan9ShareRequest(std::string_view name, std::string_view host_path,
                                      bool read_only) {
  return Dump(json{{"ResourcePath", kPlan9SharesPath},
                   {"RequestType", "Add"},
                   {"Settings", Plan9Share(name, host_path, read_only)}});
}

std::string BuildRemovePlan9ShareRequest(std::string_view name) {
  return Dump(json{{"ResourcePath", kPlan9SharesPath},
                   {"RequestType", "Remove"},
                   {"Settings", {{"Name", name}, {"AccessName", name}, {"Port", kPlan9Port}}}});
}

std::string BuildAddScsiDiskRequest(unsigned lun, std::string_view vhd_path, bool read_only) {
  return Dump(json{{"ResourcePath", ScsiAttachmentPath(lun)},
                   {"RequestType", "Add"},
                   {"Settings", ScsiAttachment(vhd_path, read_only)}});
}

std::string BuildRemoveScsiDiskRequest(unsigned lun) {
  return Dump(json{{"ResourcePath", ScsiAttachmentPath(lun)}, {"RequestType", "Remove"}});
}

std::string BuildBasicPropertiesQuery() { return "{}"; }

Guid ParseRuntimeId(std::string_view properties_document) {
  auto parsed = json::parse(properties_document, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw VmError("HCS properties: not a JSON object: \"" +
                  std::string(properties_document.substr(0, 200)) + "\"");
  }
  auto it = parsed.find("RuntimeId");
  if (it == parsed.end()) throw VmError("HCS properties: no RuntimeId in the document");
  if (!it->is_string()) {
    throw VmError("HCS properties: RuntimeId is not a string: " + it->dump());
  }
  Guid id = ParseGuidOrThrow(it->get<std::string>(), "HCS properties: RuntimeId");
  if (id == Guid{}) throw VmError("HCS properties: RuntimeId is the null GUID");
  return id;
}

SystemExitStatus ParseSystemExitStatus(std::string_view event_data) {
  SystemExitStatus status;
  auto parsed = json::parse(event_data, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) return status;
  status.parsed = true;
  if (auto it = parsed.find("Status"); it != parsed.end() && it->is_number_integer()) {
    // HCS writes the HRESULT as a signed 32-bit number.
    status.status = static_cast<HResult>(it->get<std::int64_t>());
  }
  if (auto it = parsed.find("ExitType"); it != parsed.end() && it->is_string()) {
    status.exit_type = it->get<std::string>();
  }
  return status;
}

}  // namespace uvmshim::uvm::hcs
