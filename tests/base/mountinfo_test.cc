// The mountinfo reader (common/mountinfo.h): fields after the optional ones,
// escaped paths, and this process's real table.
#include "common/mountinfo.h"

#include <gtest/gtest.h>

namespace uvmshim {
namespace {

TEST(MountInfo, ParsesFieldsAroundTheOptionalOnes) {
  const auto entries = ParseMountInfo(
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "35 22 0:30 /sub /mnt/with\\040space\\134x rw master:2 propagate_from:3 - tmpfs tmp\\011fs rw\n"
      "garbage line without a separator\n"
      "36 22 0:31 / /no/type rw -\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].mount_point, "/");
  EXPECT_EQ(entries[0].fs_type, "ext4");
  EXPECT_EQ(entries[0].source, "/dev/sda1");
  EXPECT_EQ(entries[1].root, "/sub");
  EXPECT_EQ(entries[1].mount_point, "/mnt/with space\\x");
  EXPECT_EQ(entries[1].fs_type, "tmpfs");
  EXPECT_EQ(entries[1].source, "tmp\tfs");
}

TEST(MountInfo, UnescapesOnlyThreeOctalDigits) {
  EXPECT_EQ(UnescapeMountInfoField("a\\040b"), "a b");
  EXPECT_EQ(UnescapeMountInfoField("a\\012"), "a\n");
  EXPECT_EQ(UnescapeMountInfoField("a\\09x"), "a\\09x");
  EXPECT_EQ(UnescapeMountInfoField("end\\04"), "end\\04");
}

TEST(MountInfo, ReadsThisProcessTable) {
  const auto entries = ReadMountInfo();
  ASSERT_FALSE(entries.empty());
  bool root = false, proc = false;
  for (const auto& e : entries) {
    root = root || e.mount_point == "/";
    proc = proc || (e.mount_point == "/proc" && e.fs_type == "proc");
  }
  EXPECT_TRUE(root);
  EXPECT_TRUE(proc);
  EXPECT_TRUE(ReadMountInfo("/nonexistent/mountinfo").empty());
}

}  // namespace
}  // namespace uvmshim
