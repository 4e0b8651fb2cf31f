// The HCS call discipline: every operation is closed, never while in flight;
// timeouts cancel and then wait; errors carry the call, HRESULT and HCS text.
#include "uvm/hcs/hcs_call.h"

#include <gtest/gtest.h>

#include "fake_hcs_api.h"

namespace uvmshim::uvm::hcs {
namespace {

using testing::CallScript;
using testing::FakeHcsApi;

class HcsCallTest : public ::testing::Test {
 protected:
  std::string Start(const HcsCallTimeouts& timeouts = {}) {
    return RunHcsCall(api_, "HcsStartComputeSystem", timeouts, [this](HcsHandle op) {
      return api_.StartComputeSystem(system_, op, "");
    });
  }
  void TearDown() override {
    api_.CloseComputeSystem(system_);
    EXPECT_EQ(api_.open_systems(), 0);
    EXPECT_EQ(api_.open_operations(), 0);
    EXPECT_FALSE(api_.closed_in_flight());
    EXPECT_FALSE(api_.misuse());
  }
  void SetUp() override {
    // A system handle to issue calls against.
    HcsHandle op = api_.CreateOperation();
    api_.CreateComputeSystem("vm", "{}", op, &system_);
    api_.WaitForOperationResult(op, 0);
    api_.CloseOperation(op);
  }
  FakeHcsApi api_;
  HcsHandle system_ = nullptr;
};

TEST_F(HcsCallTest, SuccessReturnsResultDocument) {
  api_.scripts["Start"].result = {hresult::kOk, R"({"done":true})"};
  EXPECT_EQ(Start(), R"({"done":true})");
}

TEST_F(HcsCallTest, SynchronousFailureNeverWaits) {
  api_.scripts["Start"].issue_hr = hresult::kAccessDenied;
  try {
    Start();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_EQ(e.hresult(), hresult::kAccessDenied);
    EXPECT_STREQ(e.what(),
                 "HcsStartComputeSystem failed: 0x80070005 (access denied, E_ACCESSDENIED)");
  }
  for (const auto& call : api_.Calls()) EXPECT_EQ(call.rfind("Wait:Start", 0), std::string::npos);
}

TEST_F(HcsCallTest, AsynchronousFailureCarriesHcsErrorText) {
  api_.scripts["Start"].result = {
      0x80370106, R"({"Error":-2143878906,"ErrorMessage":"The virtual machine stopped"})"};
  try {
    Start();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_EQ(e.hresult(), 0x80370106u);
    EXPECT_EQ(e.detail(), "The virtual machine stopped");
    EXPECT_NE(std::string(e.what()).find("HCS_E_UNEXPECTED_EXIT"), std::string::npos);
  }
}

TEST_F(HcsCallTest, TimeoutCancelsThenWaitsForCompletionBeforeClosing) {
  CallScript& script = api_.scripts["Start"];
  script.timeouts_before_result = 1;
  script.timeouts_after_cancel = 2;  // HCS keeps the operation going a while after the cancel
  HcsCallTimeouts timeouts{std::chrono::milliseconds(1500), std::chrono::milliseconds(700)};
  try {
    Start(timeouts);
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_EQ(e.hresult(), hresult::kOperationTimeout);
    EXPECT_NE(std::string(e.what()).find("HcsStartComputeSystem failed: 0x80370118 (timeout"),
              std::string::npos)
        << e.what();
    EXPECT_NE(e.detail().find("1500 ms"), std::string::npos) << e.detail();
  }
  const std::vector<std::string> expected_tail = {
      "Start",
      "Wait:Start=timeout(1500)",
      "Cancel:Start",
      "Wait:Start=timeout(700)",
      "Wait:Start=timeout(700)",
      "Wait:Start=failed",
      "Close:Start",
  };
  auto calls = api_.Calls();
  ASSERT_GE(calls.size(), expected_tail.size());
  EXPECT_EQ(std::vector<std::string>(calls.end() - static_cast<long>(expected_tail.size()),
                                     calls.end()),
            expected_tail);
}

TEST_F(HcsCallTest, CompletionRacingTheCancelCountsAsSuccess) {
  CallScript& script = api_.scripts["Start"];
  script.timeouts_before_result = 1;
  script.result_after_cancel = {hresult::kOk, "late"};
  EXPECT_EQ(Start({std::chrono::milliseconds(10), std::chrono::milliseconds(10)}), "late");
}

TEST_F(HcsCallTest, OperationCreationFailure) {
  api_.fail_create_operation = true;
  try {
    Start();
    FAIL() << "no exception";
  } catch (const HcsError& e) {
    EXPECT_NE(std::string(e.what()).find("HcsCreateOperation returned NULL"), std::string::npos);
  }
}

TEST(HcsTimeout, ClampsToDword) {
  EXPECT_EQ(ToHcsTimeout(std::chrono::milliseconds(-5)), 0u);
  EXPECT_EQ(ToHcsTimeout(std::chrono::milliseconds(1234)), 1234u);
  EXPECT_EQ(ToHcsTimeout(std::chrono::hours(24 * 365)), 0xFFFFFFFEu);  // never INFINITE
}

}  // namespace
}  // namespace uvmshim::uvm::hcs
