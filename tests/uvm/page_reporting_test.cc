// The agent's free page reporting order (guest-agent/vm/page_reporting.h):
// read from the kernel command line as the kernel reads its own parameter,
// written to the module parameter file.
#include "guest-agent/vm/page_reporting.h"
#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace uvmshim::agent::vm {
namespace {

TEST(PageReportingOrder, ReadFromTheCommandLine) {
  EXPECT_EQ(PageReportingOrderFromCmdline("quiet page_reporting.page_reporting_order=5 panic=-1"), 5u);
  EXPECT_EQ(PageReportingOrderFromCmdline("page_reporting.page_reporting_order=0"), 0u);
}

TEST(PageReportingOrder, AbsentOrMalformedLeavesTheKernelDefault) {
  EXPECT_FALSE(PageReportingOrderFromCmdline("quiet panic=-1"));
  EXPECT_FALSE(PageReportingOrderFromCmdline("page_reporting.page_reporting_order="));
  EXPECT_FALSE(PageReportingOrderFromCmdline("page_reporting.page_reporting_order=5k"));
  EXPECT_FALSE(PageReportingOrderFromCmdline("page_reporting.page_reporting_order=-1"));
  EXPECT_FALSE(PageReportingOrderFromCmdline("page_reporting.page_reporting_order=11"));
  EXPECT_FALSE(PageReportingOrderFromCmdline("xpage_reporting.page_reporting_order=5"));
}

TEST(PageReportingOrder, TheLastOneWins) {
  EXPECT_EQ(PageReportingOrderFromCmdline("page_reporting.page_reporting_order=5 page_reporting.page_reporting_order=3"),
            3u);
  EXPECT_FALSE(PageReportingOrderFromCmdline("page_reporting.page_reporting_order=5 page_reporting.page_reporting_order=x"));
}

class PageReportingFile : public ::testing::Test {
 protected:
  void SetUp() override {
    param_ = dir_ / "page_reporting_order";
    std::ofstream(param_) << "9\n";
  }
  std::string Param() const {
    std::ifstream in(param_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  uvmshim::testing::TempDir temp_{"page-reporting-test"};
  const std::filesystem::path dir_ = temp_.path();
  std::filesystem::path param_;
};

TEST_F(PageReportingFile, WritesTheOrderAskedFor) {
  EXPECT_TRUE(ApplyPageReportingOrder("quiet page_reporting.page_reporting_order=5", param_));
  EXPECT_EQ(Param(), "5\n");
}

TEST_F(PageReportingFile, LeavesTheParameterAloneWhenNothingIsAsked) {
  EXPECT_TRUE(ApplyPageReportingOrder("quiet", param_));
  EXPECT_EQ(Param(), "9\n");
}

TEST_F(PageReportingFile, ReportsAParameterItCannotWrite) {
  EXPECT_FALSE(ApplyPageReportingOrder("page_reporting.page_reporting_order=5", dir_ / "missing" / "param"));
}

}  // namespace
}  // namespace uvmshim::agent::vm
