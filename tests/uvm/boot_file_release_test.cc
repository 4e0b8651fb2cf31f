// ReleaseBootFileMappings (uvm/qemu/boot_file_release.h): the pages of a
// mapped file leave the process's RSS; other mappings are left alone.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "uvm/qemu/boot_file_release.h"

namespace uvmshim::uvm {
namespace {

namespace fs = std::filesystem;
constexpr std::size_t kFileBytes = 4u << 20;

// Rss (KiB) of this process's mappings of `path`, from /proc/self/smaps.
long RssKib(const fs::path& path) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_file = false;
  long kib = 0;
  while (std::getline(smaps, line)) {
    // A mapping's header starts with its address (lower-case hex); its fields
    // (Rss:, VmFlags:...) with an upper-case name.
    if (!line.empty() && (std::isdigit(static_cast<unsigned char>(line[0])) || (line[0] >= 'a' && line[0] <= 'f'))) {
      const auto slash = line.find('/');
      in_file = slash != std::string::npos && line.substr(slash) == path.string();
    } else if (in_file && line.rfind("Rss:", 0) == 0) {
      kib += std::stol(line.substr(4));
    }
  }
  return kib;
}

class BootFileReleaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/uvm-boot-release-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    file_ = dir_ / "vmlinux";
    std::ofstream(file_) << std::string(kFileBytes, 'k');
    other_ = dir_ / "other";
    std::ofstream(other_) << std::string(kFileBytes, 'o');
  }
  void TearDown() override {
    for (auto& [addr, size] : maps_) ::munmap(addr, size);
    fs::remove_all(dir_);
  }
  // Maps `path` privately read-only (as QEMU maps -initrd) and reads every page.
  void MapAndTouch(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    void* addr = ::mmap(nullptr, kFileBytes, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    ASSERT_NE(addr, MAP_FAILED);
    maps_.emplace_back(addr, kFileBytes);
    volatile long sum = 0;
    for (std::size_t i = 0; i < kFileBytes; i += 4096) sum = sum + static_cast<const char*>(addr)[i];
  }

  fs::path dir_, file_, other_;
  std::vector<std::pair<void*, std::size_t>> maps_;
};

TEST_F(BootFileReleaseTest, TheNamedFilesPagesLeaveTheRssAndOthersStay) {
  MapAndTouch(file_);
  MapAndTouch(other_);
  ASSERT_GE(RssKib(file_), 4000);
  ASSERT_GE(RssKib(other_), 4000);
  const BootFileRelease released = ReleaseBootFileMappings(::getpid(), {file_, ""});
  ASSERT_EQ(released.error, "");
  EXPECT_EQ(released.bytes, kFileBytes);
  EXPECT_LT(RssKib(file_), 256);
  EXPECT_GE(RssKib(other_), 4000);
  // The mapping still reads the file (its pages fault back in).
  EXPECT_EQ(static_cast<const char*>(maps_[0].first)[kFileBytes - 1], 'k');
}

TEST_F(BootFileReleaseTest, AProcessThatIsGoneGivesTheReasonNotAThrow) {
  const BootFileRelease released = ReleaseBootFileMappings(0x3fffffff, {file_});
  EXPECT_EQ(released.bytes, 0u);
  EXPECT_NE(released.error.find("pidfd_open"), std::string::npos) << released.error;
}

}  // namespace
}  // namespace uvmshim::uvm
