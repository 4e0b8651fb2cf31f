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

}  // namespace uvmshim::uvm::hcs
