#include "guest-agent/mounts.h"

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace uvmshim::agent {
namespace {

TEST(MountOptions, SplitsFlagsPropagationAndData) {
  auto o = ParseMountOptions({"nosuid", "noexec", "ro", "mode=755", "size=65536k", "rprivate", "rbind"});
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_NOEXEC | MS_RDONLY));
  EXPECT_EQ(o.data, "mode=755,size=65536k");
  ASSERT_EQ(o.propagation.size(), 1u);
  EXPECT_EQ(o.propagation[0], static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_TRUE(o.bind);
  EXPECT_TRUE(o.recursive_bind);
  auto rw = ParseMountOptions({"ro", "rw"});
  EXPECT_EQ(rw.flags, 0u);
}

class ResolveInRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/resolve-test.XXXXXX";
    root_ = mkdtemp(pattern);
    std::filesystem::create_directories(root_ + "/real/dir");
    std::filesystem::create_symlink("/real", root_ + "/abs");
    std::filesystem::create_symlink("real/dir", root_ + "/rel");
    std::filesystem::create_symlink("../../../../etc", root_ + "/escape");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_;
};

TEST_F(ResolveInRootTest, FollowsLinksInsideTheRoot) {
  EXPECT_EQ(ResolveInRoot(root_, "/abs/dir"), root_ + "/real/dir");
  EXPECT_EQ(ResolveInRoot(root_, "/rel/x"), root_ + "/real/dir/x");
  EXPECT_EQ(ResolveInRoot(root_, "/missing/y"), root_ + "/missing/y");
}

TEST_F(ResolveInRootTest, NeverLeavesTheRoot) {
  EXPECT_EQ(ResolveInRoot(root_, "/escape/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(ResolveInRoot(root_, "/../../x"), root_ + "/x");
}

}  // namespace
}  // namespace uvmshim::agent
