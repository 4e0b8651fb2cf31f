#include "common/error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace uvmshim {
namespace {

TEST(Error, CarriesCodeAndMessage) {
  const Error error(ErrorCode::kInvalidArgument, "memory_mb 0 is below 64");
  EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(error.message(), "memory_mb 0 is below 64");
  EXPECT_STREQ(error.what(), "memory_mb 0 is below 64");
  EXPECT_TRUE(error.context().empty());
}

TEST(Error, ContextIsPrependedOutermostFirst) {
  try {
    try {
      throw Error(ErrorCode::kPermissionDenied, "mount /proc: Operation not permitted");
    } catch (Error& e) {
      e.AddContext("create container c1");
      throw;
    }
  } catch (Error& e) {
    e.AddContext("sandbox s1");
    EXPECT_STREQ(e.what(), "sandbox s1: create container c1: mount /proc: Operation not permitted");
    EXPECT_EQ(e.context(), (std::vector<std::string>{"sandbox s1", "create container c1"}));
    EXPECT_EQ(e.message(), "mount /proc: Operation not permitted");
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
  }
}

TEST(Error, IsARuntimeErrorForOlderCatchSites) {
  try {
    throw Error("boom");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
}

TEST(Error, ErrnoMapsToACode) {
  const Error missing = ErrnoError("open /x", ENOENT);
  EXPECT_EQ(missing.code(), ErrorCode::kNotFound);
  EXPECT_NE(std::string(missing.what()).find("open /x: "), std::string::npos);
  EXPECT_EQ(CodeForErrno(EACCES), ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeForErrno(EEXIST), ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeForErrno(EIO), ErrorCode::kInternal);
  EXPECT_STREQ(ToString(ErrorCode::kDeadlineExceeded), "deadline exceeded");
}

}  // namespace
}  // namespace uvmshim
