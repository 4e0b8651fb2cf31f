#include "common/ids.h"

#include <gtest/gtest.h>

namespace uvmshim {
namespace {

TEST(Ids, AcceptsContainerdStyleIds) {
  for (const char* id : {"a", "c1", "my-container", "a.b_c-d", "ABC123", "0"}) EXPECT_TRUE(IsValidId(id)) << id;
  EXPECT_TRUE(IsValidId(std::string(64, 'f')));  // CRI's ids
  EXPECT_TRUE(IsValidId(std::string(76, 'x')));  // every part, the VM manager included
}

TEST(Ids, RejectsPathsSeparatorsAndLength) {
  for (const char* id : {"", "a/b", "..", ".", "../x", "a..b", "-a", "a-", "a b", "a\nb", "é", "a__b", "_a"})
    EXPECT_FALSE(IsValidId(id)) << id;
  EXPECT_FALSE(IsValidId(std::string(77, 'x')));
}

TEST(Ids, ErrorNamesTheProblem) {
  EXPECT_EQ(IdError("container id", "ok"), "");
  EXPECT_EQ(IdError("container id", ""), "container id is empty");
  EXPECT_NE(IdError("exec id", "a/b").find("exec id \"a/b\" is invalid"), std::string::npos);
  EXPECT_NE(IdError("container id", std::string(80, 'y')).find("longer than 76"), std::string::npos);
}

}  // namespace
}  // namespace uvmshim
