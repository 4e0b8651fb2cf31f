#include "common/private_dir.h"

#include <sys/stat.h>

#include <fstream>

#include "base_test_support.h"
#include "common/error.h"

namespace uvmshim {
namespace {

namespace fs = std::filesystem;
using PrivateDir = testing::TempDirTest;

unsigned Mode(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST_F(PrivateDir, CreatesParentsAndMakesIt0700) {
  CreatePrivateDir(dir_ / "a" / "b");
  EXPECT_EQ(Mode(dir_ / "a" / "b"), 0700u);
}

TEST_F(PrivateDir, TightensAnExistingDirectory) {
  fs::create_directory(dir_ / "open");
  fs::permissions(dir_ / "open", fs::perms::all);
  CreatePrivateDir(dir_ / "open");
  EXPECT_EQ(Mode(dir_ / "open"), 0700u);
}

TEST_F(PrivateDir, AFileInTheWayNamesThePath) {
  std::ofstream(dir_ / "file") << "x";
  try {
    CreatePrivateDir(dir_ / "file" / "sub");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir_ / "file" / "sub").string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace uvmshim
