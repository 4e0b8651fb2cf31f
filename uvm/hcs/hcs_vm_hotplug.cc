// HcsVm's hot-plug: Plan9 shares and SCSI disks added to (and removed from)
// a created or running UVM with HcsModifyComputeSystem.
#include <system_error>

#include "uvm/hcs/hcs_vm.h"

namespace uvmshim::uvm::hcs {

void HcsVm::ModifySystem(const std::string& request) {
  HcsApi& api = *deps_.api;
  RunHcsCall(api, "HcsModifyComputeSystem", options_.control_timeouts,
             [&](HcsHandle op) { return api.ModifyComputeSystem(system_->get(), op, request); });
}

void HcsVm::AddPlan9Share(const std::string& name, const std::filesystem::path& host_dir, bool read_only) {
  std::lock_guard call(call_mutex_);
  RequireState({State::kCreated, State::kRunning}, "add a Plan9 share");
  std::error_code ec;
  if (!std::filesystem::is_directory(host_dir, ec))
    throw VmError("UVM " + config_.id + ": Plan9 share " + name + ": no directory " + host_dir.string());
  ModifySystem(BuildAddPlan9ShareRequest(name, HostPath(host_dir), read_only));
}

void HcsVm::RemovePlan9Share(const std::string& name) {
  std::lock_guard call(call_mutex_);
  RequireState({State::kCreated, State::kRunning}, "remove a Plan9 share");
  ModifySystem(BuildRemovePlan9ShareRequest(name));
}

void HcsVm::AddScsiDisk(unsigned lun, const std::filesystem::path& vhd, bool read_only) {
  std::lock_guard call(call_mutex_);
  RequireState({State::kCreated, State::kRunning}, "add a SCSI disk");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(vhd, ec))
    throw VmError("UVM " + config_.id + ": SCSI disk " + std::to_string(lun) + ": no file " + vhd.string());
  const std::string path = HostPath(vhd);
  const HResult hr = deps_.api->GrantVmAccess(config_.id, path);
  if (Failed(hr)) throw HcsError("HcsGrantVmAccess", hr, path);
  ModifySystem(BuildAddScsiDiskRequest(lun, path, read_only));
}

void HcsVm::RemoveScsiDisk(unsigned lun) {
  std::lock_guard call(call_mutex_);
  RequireState({State::kCreated, State::kRunning}, "remove a SCSI disk");
  ModifySystem(BuildRemoveScsiDiskRequest(lun));
}

GuestStorageLocation HcsVm::AttachStorage(const HostStorage& storage) {
  GuestStorageLocation location;
  switch (storage.kind) {
    case HostStorage::Kind::kDirectory:
      if (storage.share_name.empty() || storage.share_name == "rootfs")
        throw VmError("UVM " + config_.id + ": share_name \"" + storage.share_name +
                          "\": empty or the rootfs share's name",
                      ErrorCode::kInvalidArgument);
      AddPlan9Share(storage.share_name, storage.host_path, storage.read_only);
      location.kind = GuestStorageLocation::Kind::kPlan9Share;
      location.share = storage.share_name;
      location.vsock_port = kPlan9Port;
      return location;
    case HostStorage::Kind::kDisk:
      // LUN 0 of controller 0 holds a VHD rootfs (uvm.rootfs=scsi:0:0).
      if (storage.lun == 0 || storage.lun > 63)
        throw VmError("UVM " + config_.id + ": lun " + std::to_string(storage.lun) +
                          ": want 1..63 (LUN 0 is the rootfs disk's)",
                      ErrorCode::kInvalidArgument);
      AddScsiDisk(storage.lun, storage.host_path, storage.read_only);
      location.kind = GuestStorageLocation::Kind::kScsiDisk;
      location.controller = 0;  // every disk sits on kScsiController0
      location.lun = storage.lun;
      return location;
  }
  throw VmError("UVM " + config_.id + ": unknown storage kind", ErrorCode::kInvalidArgument);
}

}  // namespace uvmshim::uvm::hcs
