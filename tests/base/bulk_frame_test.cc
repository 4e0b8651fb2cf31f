// The bulk stdio port's frames (common/bulk_frame.h): what the agent writes
// parses back whole in any slicing; garbage, oversized and malformed headers
// end the stream with an error naming the offset, never a crash or a large
// allocation.
#include "common/bulk_frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace uvmshim {
namespace {

struct Seen {
  std::vector<std::string> events;  // "data 7 abc", "end 7", "credit 7 100"
  std::string data;                 // all payload bytes, in order
};

BulkFrameParser MakeParser(Seen& seen) {
  return BulkFrameParser({
      .data = [&seen](std::uint32_t stream, std::string_view piece) {
        seen.events.push_back("data " + std::to_string(stream) + " " + std::to_string(piece.size()));
        seen.data.append(piece);
      },
      .end = [&seen](std::uint32_t stream) { seen.events.push_back("end " + std::to_string(stream)); },
      .credit = [&seen](std::uint32_t stream, std::uint32_t granted) {
        seen.events.push_back("credit " + std::to_string(stream) + " " + std::to_string(granted));
      },
  });
}

std::string DataFrame(std::uint32_t stream, const std::string& payload) {
  return EncodeBulkHeader({.stream = stream, .length = static_cast<std::uint32_t>(payload.size()),
                           .kind = BulkFrameKind::kData}) +
         payload;
}

TEST(BulkFrame, HeaderIsSixteenLittleEndianBytes) {
  const std::string header = EncodeBulkHeader({.stream = 0x01020304, .length = 0x0a0b0c0d, .kind = BulkFrameKind::kEnd});
  ASSERT_EQ(header.size(), kBulkHeaderBytes);
  EXPECT_EQ(header, std::string("UVBF\x04\x03\x02\x01\x0d\x0c\x0b\x0a\x02\x00\x00\x00", 16));
}

TEST(BulkFrame, FramesParseBackWholeInAnySlicing) {
  std::string wire = DataFrame(7, "hello") + DataFrame(9, std::string(5000, 'x')) +
                     EncodeBulkHeader({.stream = 9, .length = 0, .kind = BulkFrameKind::kEnd}) +
                     EncodeBulkHeader({.stream = 7, .length = 4096, .kind = BulkFrameKind::kCredit}) +
                     DataFrame(7, "bye") + EncodeBulkHeader({.stream = 7, .length = 0, .kind = BulkFrameKind::kEnd});
  std::mt19937 random(42);
  for (int round = 0; round < 50; ++round) {
    Seen seen;
    auto parser = MakeParser(seen);
    std::size_t at = 0;
    while (at < wire.size()) {
      const std::size_t n = std::min<std::size_t>(wire.size() - at, 1 + random() % 40);
      ASSERT_TRUE(parser.Feed(std::string_view(wire).substr(at, n))) << parser.error();
      at += n;
    }
    EXPECT_FALSE(parser.mid_frame());
    EXPECT_EQ(seen.data, "hello" + std::string(5000, 'x') + "bye");
    std::vector<std::string> kinds;
    for (const auto& e : seen.events)
      if (e.rfind("data", 0) != 0) kinds.push_back(e);
    EXPECT_EQ(kinds, (std::vector<std::string>{"end 9", "credit 7 4096", "end 7"}));
  }
}

TEST(BulkFrame, APartialFrameIsMidFrame) {
  Seen seen;
  auto parser = MakeParser(seen);
  const std::string frame = DataFrame(3, "abcdef");
  ASSERT_TRUE(parser.Feed(std::string_view(frame).substr(0, 10)));
  EXPECT_TRUE(parser.mid_frame());
  ASSERT_TRUE(parser.Feed(std::string_view(frame).substr(10, 9)));
  EXPECT_TRUE(parser.mid_frame());
  EXPECT_EQ(seen.data, "abc");
  ASSERT_TRUE(parser.Feed(std::string_view(frame).substr(19)));
  EXPECT_FALSE(parser.mid_frame());
  EXPECT_EQ(seen.data, "abcdef");
}

void ExpectRejected(const std::string& wire, const std::string& says) {
  Seen seen;
  auto parser = MakeParser(seen);
  EXPECT_FALSE(parser.Feed(wire));
  EXPECT_TRUE(parser.failed());
  EXPECT_NE(parser.error().find(says), std::string::npos) << parser.error();
  // Failed for good: a later valid frame is not parsed.
  EXPECT_FALSE(parser.Feed(DataFrame(1, "x")));
  EXPECT_EQ(seen.data.find('x'), std::string::npos);
}

TEST(BulkFrame, GarbageIsRejectedNamingTheOffset) {
  ExpectRejected(DataFrame(1, "ok") + "this is not a frame header", "at byte 18: bad magic");
  std::mt19937 random(7);
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(random());
  Seen seen;
  auto parser = MakeParser(seen);
  EXPECT_FALSE(parser.Feed(noise));
}

TEST(BulkFrame, OversizedDataFrameIsRejectedBeforeAnyPayload) {
  Seen seen;
  auto parser = MakeParser(seen);
  EXPECT_FALSE(parser.Feed(EncodeBulkHeader({.stream = 1, .length = 0xffffffff, .kind = BulkFrameKind::kData}) + "abc"));
  EXPECT_NE(parser.error().find("over the limit"), std::string::npos) << parser.error();
  EXPECT_TRUE(seen.data.empty());
}

TEST(BulkFrame, MalformedHeadersAreRejected) {
  ExpectRejected(EncodeBulkHeader({.stream = 0, .length = 1, .kind = BulkFrameKind::kData}) + "x", "stream id 0");
  ExpectRejected(EncodeBulkHeader({.stream = 1, .length = 0, .kind = BulkFrameKind::kData}), "empty data frame");
  ExpectRejected(EncodeBulkHeader({.stream = 1, .length = 5, .kind = BulkFrameKind::kEnd}), "has a length");
  ExpectRejected(EncodeBulkHeader({.stream = 1, .length = 0, .kind = BulkFrameKind::kCredit}), "grants nothing");
  ExpectRejected(EncodeBulkHeader({.stream = 1, .length = 1, .kind = static_cast<BulkFrameKind>(9)}),
                 "unknown frame kind 9");
  std::string flags = EncodeBulkHeader({.stream = 1, .length = 0, .kind = BulkFrameKind::kEnd});
  flags[14] = 1;
  ExpectRejected(flags, "reserved flags");
}

}  // namespace
}  // namespace uvmshim
