#include "uvm/hcs/hresult.h"

#include <gtest/gtest.h>

namespace uvmshim::uvm::hcs {
namespace {

TEST(HResult, MessageNamesCallCodeAndMeaning) {
  EXPECT_EQ(FormatHcsFailure("HcsStartComputeSystem", 0x80370118),
            "HcsStartComputeSystem failed: 0x80370118 (timeout, HCS_E_OPERATION_TIMEOUT)");
  EXPECT_EQ(FormatHcsFailure("HcsCreateComputeSystem", 0x8037010D, "bad field Foo"),
            "HcsCreateComputeSystem failed: 0x8037010D (invalid JSON document, "
            "HCS_E_INVALID_JSON): bad field Foo");
  EXPECT_EQ(FormatHcsFailure("HcsGrantVmAccess", 0x80070005),
            "HcsGrantVmAccess failed: 0x80070005 (access denied, E_ACCESSDENIED)");
}

TEST(HResult, UnknownCodesShowFacilityAndCode) {
  EXPECT_EQ(DescribeHResult(0x80371234), "unknown HRESULT: facility 0x37, code 0x1234");
  EXPECT_EQ(HResultName(0x80371234), "");
  EXPECT_EQ(HexHResult(0x1), "0x00000001");
}

TEST(HResult, Classification) {
  EXPECT_TRUE(Failed(0x80370118));
  EXPECT_FALSE(Failed(0));
  EXPECT_FALSE(Failed(1));  // S_FALSE is success
  EXPECT_TRUE(IsTimeout(hresult::kOperationTimeout));
  EXPECT_TRUE(IsTimeout(hresult::kWin32Timeout));
  EXPECT_FALSE(IsTimeout(hresult::kInvalidJson));
  EXPECT_EQ(HResultName(hresult::kSystemAlreadyStopped), "HCS_E_SYSTEM_ALREADY_STOPPED");
  EXPECT_EQ(HResultName(hresult::kOperationPending), "HCS_E_OPERATION_PENDING");
}

TEST(HResult, ErrorTextFromResultError) {
  EXPECT_EQ(ErrorTextFromResultDocument(
                R"({"Error":-2143878899,"ErrorMessage":"The JSON document is invalid.",)"
                R"("ErrorEvents":[{"Message":"Unknown field 'Bogus'","Provider":"x"},)"
                R"({"Message":"The JSON document is invalid."}]})"),
            "The JSON document is invalid.; Unknown field 'Bogus'");
  EXPECT_EQ(ErrorTextFromResultDocument("  plain text\r\n"), "plain text");
  EXPECT_EQ(ErrorTextFromResultDocument(""), "");
  EXPECT_EQ(ErrorTextFromResultDocument(R"({"Error":5})"), "");
  const std::string huge(5000, 'x');
  EXPECT_EQ(ErrorTextFromResultDocument(huge).size(), 2003u);  // 2000 + "..."
}

TEST(HResult, HcsErrorCarriesFields) {
  HcsError error("HcsModifyComputeSystem", 0x8037010E, "vm gone");
  EXPECT_EQ(error.call(), "HcsModifyComputeSystem");
  EXPECT_EQ(error.hresult(), 0x8037010Eu);
  EXPECT_EQ(error.detail(), "vm gone");
  EXPECT_STREQ(error.what(),
               "HcsModifyComputeSystem failed: 0x8037010E (no such compute system, "
               "HCS_E_SYSTEM_NOT_FOUND): vm gone");
  const VmError& as_vm_error = error;  // callers of UtilityVm catch VmError
  EXPECT_NE(std::string(as_vm_error.what()).find("0x8037010E"), std::string::npos);
}

}  // namespace
}  // namespace uvmshim::uvm::hcs
