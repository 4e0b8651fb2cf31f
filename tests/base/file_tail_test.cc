#include "common/file_tail.h"

#include <fstream>

#include "base_test_support.h"

namespace uvmshim {
namespace {

using FileTail = testing::TempDirTest;

void Write(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
}

TEST_F(FileTail, LastLinesOnly) {
  Write(dir_ / "log", "one\ntwo\r\nthree\nfour");
  EXPECT_EQ(ReadFileTail(dir_ / "log", {.max_lines = 2}), "three\nfour\n");
  EXPECT_EQ(ReadFileTail(dir_ / "log"), "one\ntwo\nthree\nfour\n");
}

TEST_F(FileTail, LastBytesOnly) {
  Write(dir_ / "log", std::string(5000, 'a') + "\nend\n");
  const std::string tail = ReadFileTail(dir_ / "log", {.max_bytes = 10});
  EXPECT_EQ(tail, "aaaaa\nend\n");
}

TEST_F(FileTail, MissingOrEmptyIsEmpty) {
  EXPECT_EQ(ReadFileTail(dir_ / "absent"), "");
  Write(dir_ / "empty", "");
  EXPECT_EQ(ReadFileTail(dir_ / "empty"), "");
}

}  // namespace
}  // namespace uvmshim
