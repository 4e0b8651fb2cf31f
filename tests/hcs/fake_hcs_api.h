// A scripted stand-in for ComputeCore. It exists ONLY because the Host
// Compute Service cannot run on Linux (or under wine): it lets the HCS call
// discipline and the HcsVm state machine be tested. It also checks the
// rules real HCS punishes: an operation closed while still in flight, a
// handle closed twice, waits on operations that were never started.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "uvm/hcs/hcs_api.h"

namespace uvmshim::uvm::hcs::testing {

// How one kind of call behaves.
struct CallScript {
  HResult issue_hr = hresult::kOk;       // returned by the call itself
  HcsOperationResult result{};           // what the operation completes with
  int timeouts_before_result = 0;        // waits that time out first
  // After HcsCancelOperation: waits that still time out, then this result.
  int timeouts_after_cancel = 0;
  HcsOperationResult result_after_cancel{0x800704C7, ""};  // ERROR_CANCELLED
};

class FakeHcsApi final : public HcsApi {
 public:
  // Scripts by call: "Create", "Start", "ShutDown", "Terminate",
  // "GetProperties", "Modify". Unscripted calls succeed; GetProperties then
  // returns a valid RuntimeId.
  std::map<std::string, CallScript> scripts;
  bool fail_create_operation = false;
  HResult grant_hr = hresult::kOk;
  HResult set_callback_hr = hresult::kOk;
  // Deliver HcsEventSystemExited when a terminate / shutdown completes.
  bool exit_on_terminate = true;
  bool exit_on_shutdown = true;
  static constexpr const char* kRuntimeId = "a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3";

  HcsHandle CreateOperation() override;
  void CloseOperation(HcsHandle operation) override;
  HcsOperationResult WaitForOperationResult(HcsHandle operation,
                                            std::uint32_t timeout_ms) override;
  HResult CancelOperation(HcsHandle operation) override;
  HResult CreateComputeSystem(const std::string& id, const std::string& configuration,
                              HcsHandle operation, HcsHandle* system) override;
  HResult StartComputeSystem(HcsHandle system, HcsHandle operation,
                             const std::string& options) override;
  HResult ShutDownComputeSystem(HcsHandle system, HcsHandle operation,
                                const std::string& options) override;
  HResult TerminateComputeSystem(HcsHandle system, HcsHandle operation,
                                 const std::string& options) override;
  HResult GetComputeSystemProperties(HcsHandle system, HcsHandle operation,
                                     const std::string& property_query) override;
  HResult ModifyComputeSystem(HcsHandle system, HcsHandle operation,
                              const std::string& configuration) override;
  HResult SetComputeSystemCallback(HcsHandle system, HcsEventSink* sink) override;
  void CloseComputeSystem(HcsHandle system) override;
  HResult GrantVmAccess(const std::string& vm_id, const std::string& file_path) override;

  // Sends an event to the registered sink (as HCS would from its thread).
  void FireEvent(std::uint32_t type, const std::string& data);

  // Observations.
  std::vector<std::string> Calls() const;  // e.g. "Start", "Wait:Start=timeout", "Cancel:Start"
  int CountCalls(const std::string& name) const;
  int open_operations() const;
  int open_systems() const;
  bool closed_in_flight() const { return closed_in_flight_.load(); }
  bool misuse() const { return misuse_.load(); }  // double close, wait on unknown op...
  std::string create_document() const;
  std::string create_id() const;
  std::vector<std::string> modify_documents() const;
  std::vector<std::pair<std::string, std::string>> grants() const;
  std::string property_query() const;

 private:
  struct Operation {
    std::string call;  // which call was issued on it; "" = none yet
    bool completed = false;
    bool closed = false;
    bool cancelled = false;
    int timeouts_left = 0;
  };

  HResult Issue(HcsHandle operation, const std::string& call);
  Operation* Find(HcsHandle operation);  // needs mutex_
  void Log(std::string entry);           // needs mutex_

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Operation>> operations_;
  std::vector<std::string> calls_;
  int systems_created_ = 0;
  int systems_closed_ = 0;
  HcsEventSink* sink_ = nullptr;
  std::string create_document_;
  std::string create_id_;
  std::vector<std::string> modify_documents_;
  std::vector<std::pair<std::string, std::string>> grants_;
  std::string property_query_;
  std::atomic<bool> closed_in_flight_{false};
  std::atomic<bool> misuse_{false};
  int system_token_ = 0;  // its address is the fake HCS_SYSTEM
};

}  // namespace uvmshim::uvm::hcs::testing
