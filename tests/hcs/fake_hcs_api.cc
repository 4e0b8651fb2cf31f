#include "fake_hcs_api.h"

#include <algorithm>

namespace uvmshim::uvm::hcs::testing {

void FakeHcsApi::Log(std::string entry) { calls_.push_back(std::move(entry)); }

FakeHcsApi::Operation* FakeHcsApi::Find(HcsHandle operation) {
  for (auto& op : operations_) {
    if (op.get() == operation) return op.get();
  }
  misuse_ = true;
  return nullptr;
}

HcsHandle FakeHcsApi::CreateOperation() {
  std::lock_guard lock(mutex_);
  Log("CreateOperation");
  if (fail_create_operation) return nullptr;
  operations_.push_back(std::make_unique<Operation>());
  return operations_.back().get();
}

void FakeHcsApi::CloseOperation(HcsHandle operation) {
  std::lock_guard lock(mutex_);
  Operation* op = Find(operation);
  if (op == nullptr) return;
  Log("Close:" + op->call);
  if (op->closed) misuse_ = true;
  if (!op->call.empty() && !op->completed) closed_in_flight_ = true;
  op->closed = true;
}

HResult FakeHcsApi::Issue(HcsHandle operation, const std::string& call) {
  std::lock_guard lock(mutex_);
  Log(call);
  Operation* op = Find(operation);
  if (op == nullptr) return hresult::kInvalidArg;
  if (!op->call.empty() || op->closed) misuse_ = true;  // an operation is single-use
  const CallScript& script = scripts[call];
  if (Failed(script.issue_hr)) return script.issue_hr;
  op->call = call;
  op->timeouts_left = script.timeouts_before_result;
  return hresult::kOk;
}

HcsOperationResult FakeHcsApi::WaitForOperationResult(HcsHandle operation,
                                                      std::uint32_t timeout_ms) {
  HcsOperationResult result;
  bool fire_exit = false;
  std::string exit_data;
  {
    std::lock_guard lock(mutex_);
    Operation* op = Find(operation);
    if (op == nullptr || op->closed) {
      misuse_ = true;
      return {hresult::kInvalidArg, ""};
    }
    if (op->call.empty()) {
      Log("Wait:?=not-started");
      return {hresult::kOperationNotStarted, ""};
    }
    if (op->completed) misuse_ = true;  // the result was already taken
    if (op->timeouts_left > 0) {
      --op->timeouts_left;
      Log("Wait:" + op->call + "=timeout(" + std::to_string(timeout_ms) + ")");
      return {hresult::kOperationTimeout, ""};
    }
    const CallScript& script = scripts[op->call];
    op->completed = true;
    if (op->cancelled) {
      result = script.result_after_cancel;
    } else if (op->call == "GetProperties" && script.result.hr == hresult::kOk &&
               script.result.document.empty()) {
      result = {hresult::kOk, std::string(R"({"Id":"x","RuntimeId":")") + kRuntimeId +
                                  R"(","State":"Created","SystemType":"VirtualMachine"})"};
    } else {
      result = script.result;
    }
    Log("Wait:" + op->call + "=" + (Failed(result.hr) ? "failed" : "ok"));
    if (!Failed(result.hr) && op->call == "Terminate" && exit_on_terminate) {
      fire_exit = true;
      exit_data = R"({"Status":0,"ExitType":"ForcedExit"})";
    }
    if (!Failed(result.hr) && op->call == "ShutDown" && exit_on_shutdown) {
      fire_exit = true;
      exit_data = R"({"Status":0,"ExitType":"GracefulExit"})";
    }
  }
  if (fire_exit) FireEvent(kHcsEventSystemExited, exit_data);
  return result;
}

HResult FakeHcsApi::CancelOperation(HcsHandle operation) {
  std::lock_guard lock(mutex_);
  Operation* op = Find(operation);
  if (op == nullptr) return hresult::kInvalidArg;
  Log("Cancel:" + op->call);
  op->cancelled = true;
  op->timeouts_left = scripts[op->call].timeouts_after_cancel;
  return hresult::kOk;
}

HResult FakeHcsApi::CreateComputeSystem(const std::string& id, const std::string& configuration,
                                        HcsHandle operation, HcsHandle* system) {
  HResult hr = Issue(operation, "Create");
  std::lock_guard lock(mutex_);
  create_id_ = id;
  create_document_ = configuration;
  if (Failed(hr)) return hr;
  // HCS hands the system handle out at once, even though creation goes on.
  *system = &system_token_;
  ++systems_created_;
  return hr;
}

HResult FakeHcsApi::StartComputeSystem(HcsHandle system, HcsHandle operation,
                                       const std::string&) {
  if (system != &system_token_) misuse_ = true;
  return Issue(operation, "Start");
}

HResult FakeHcsApi::ShutDownComputeSystem(HcsHandle system, HcsHandle operation,
                                          const std::string&) {
  if (system != &system_token_) misuse_ = true;
  return Issue(operation, "ShutDown");
}

HResult FakeHcsApi::TerminateComputeSystem(HcsHandle system, HcsHandle operation,
                                           const std::string&) {
  if (system != &system_token_) misuse_ = true;
  return Issue(operation, "Terminate");
}

HResult FakeHcsApi::GetComputeSystemProperties(HcsHandle system, HcsHandle operation,
                                               const std::string& property_query) {
  if (system != &system_token_) misuse_ = true;
  {
    std::lock_guard lock(mutex_);
    property_query_ = property_query;
  }
  return Issue(operation, "GetProperties");
}

HResult FakeHcsApi::ModifyComputeSystem(HcsHandle system, HcsHandle operation,
                                        const std::string& configuration) {
  if (system != &system_token_) misuse_ = true;
  {
    std::lock_guard lock(mutex_);
    modify_documents_.push_back(configuration);
  }
  return Issue(operation, "Modify");
}

HResult FakeHcsApi::SetComputeSystemCallback(HcsHandle system, HcsEventSink* sink) {
  std::lock_guard lock(mutex_);
  Log("SetCallback");
  if (system != &system_token_) misuse_ = true;
  if (Failed(set_callback_hr)) return set_callback_hr;
  sink_ = sink;
  return hresult::kOk;
}

void FakeHcsApi::CloseComputeSystem(HcsHandle system) {
  std::lock_guard lock(mutex_);
  Log("CloseSystem");
  if (system != &system_token_) misuse_ = true;
  ++systems_closed_;
  if (systems_closed_ > systems_created_) misuse_ = true;
  sink_ = nullptr;  // HCS unregisters the callback on close
}

HResult FakeHcsApi::GrantVmAccess(const std::string& vm_id, const std::string& file_path) {
  std::lock_guard lock(mutex_);
  Log("Grant");
  grants_.emplace_back(vm_id, file_path);
  return grant_hr;
}

void FakeHcsApi::FireEvent(std::uint32_t type, const std::string& data) {
  HcsEventSink* sink;
  {
    std::lock_guard lock(mutex_);
    Log("Event:" + std::to_string(type));
    sink = sink_;
  }
  if (sink != nullptr) sink->OnHcsEvent(type, data);
}

std::vector<std::string> FakeHcsApi::Calls() const {
  std::lock_guard lock(mutex_);
  return calls_;
}

int FakeHcsApi::CountCalls(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count(calls_.begin(), calls_.end(), name));
}

int FakeHcsApi::open_operations() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count_if(operations_.begin(), operations_.end(),
                                        [](const auto& op) { return !op->closed; }));
}

int FakeHcsApi::open_systems() const {
  std::lock_guard lock(mutex_);
  return systems_created_ - systems_closed_;
}

std::string FakeHcsApi::create_document() const {
  std::lock_guard lock(mutex_);
  return create_document_;
}

std::string FakeHcsApi::create_id() const {
  std::lock_guard lock(mutex_);
  return create_id_;
}

std::vector<std::string> FakeHcsApi::modify_documents() const {
  std::lock_guard lock(mutex_);
  return modify_documents_;
}

std::vector<std::pair<std::string, std::string>> FakeHcsApi::grants() const {
  std::lock_guard lock(mutex_);
  return grants_;
}

std::string FakeHcsApi::property_query() const {
  std::lock_guard lock(mutex_);
  return property_query_;
}

}  // namespace uvmshim::uvm::hcs::testing
