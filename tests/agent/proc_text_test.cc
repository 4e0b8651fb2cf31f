// proc_text.h: the stream-free /proc readers of the container init helper.
#include "guest-agent/proc_text.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace uvmshim::agent {
namespace {

TEST(ProcText, ReadsAProcFileWhoseSizeIsZero) {
  const auto text = ReadProcText("/proc/self/mountinfo");
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find(" / "), std::string::npos) << *text;  // the root mount is listed
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int expected = -1;
  in >> expected;
  const auto last_cap = ReadProcText("/proc/sys/kernel/cap_last_cap");
  ASSERT_TRUE(last_cap.has_value());
  EXPECT_EQ(ParseLeadingInt(*last_cap), expected);
}

TEST(ProcText, MissingFileAndLimit) {
  EXPECT_FALSE(ReadProcText("/proc/self/no-such-file").has_value());
  const auto cut = ReadProcText("/proc/self/mountinfo", 5);
  ASSERT_TRUE(cut.has_value());
  EXPECT_EQ(cut->size(), 5u);
}

TEST(ProcText, ParseLeadingInt) {
  EXPECT_EQ(ParseLeadingInt("40\n"), 40);
  EXPECT_EQ(ParseLeadingInt("  -3 rest"), -3);
  EXPECT_FALSE(ParseLeadingInt("").has_value());
  EXPECT_FALSE(ParseLeadingInt("x1").has_value());
}

TEST(ProcText, MountPointsDecodeEscapesAndSkipShortLines) {
  const std::string text =
      "22 1 0:21 / / rw,relatime - overlay overlay rw\n"
      "23 22 0:5 / /dev rw - devtmpfs devtmpfs rw\n"
      "24 22 0:30 / /run/a\\040dir\\134x rw - tmpfs tmpfs rw\n"
      "truncated line\n"
      "25 22 0:31 / /tail\\04 rw - tmpfs tmpfs rw";  // no newline at the end, a cut escape
  const std::vector<std::string> expected = {"/", "/dev", "/run/a dir\\x", "/tail\\04"};
  EXPECT_EQ(MountPointsOfMountInfo(text), expected);
  EXPECT_TRUE(MountPointsOfMountInfo("").empty());
}

}  // namespace
}  // namespace uvmshim::agent
