// A private temp dir per test, removed afterwards.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/temp_dir.h"

namespace uvmshim::testing {

class TempDirTest : public ::testing::Test {
 protected:
  TempDir temp_{"uvmshim-base"};
  const std::filesystem::path dir_ = temp_.path();
};

}  // namespace uvmshim::testing
