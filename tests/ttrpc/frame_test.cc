#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "ttrpc/frame.h"

namespace uvmshim::ttrpc {
namespace {

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

TEST(FrameHeader, EncodesBigEndianLengthStreamTypeFlags) {
  const auto h = EncodeFrameHeader({0x01020304, 0xA0B0C0D0, 2, 0x7f});
  const std::string got(reinterpret_cast<const char*>(h.data()), h.size());
  EXPECT_EQ(got, Bytes({0x01, 0x02, 0x03, 0x04, 0xA0, 0xB0, 0xC0, 0xD0, 0x02, 0x7f}));
}

TEST(FrameHeader, DecodeIsInverseOfEncode) {
  const FrameHeader in{4u << 20, 0xFFFFFFFF, 1, 0};
  const auto bytes = EncodeFrameHeader(in);
  EXPECT_EQ(DecodeFrameHeader(bytes.data()), in);
}

TEST(EncodeFrame, HeaderThenPayload) {
  EXPECT_EQ(EncodeFrame(3, FrameType::kRequest, "abc"),
            Bytes({0, 0, 0, 3, 0, 0, 0, 3, 1, 0}) + "abc");
  EXPECT_EQ(EncodeFrame(1, FrameType::kResponse, ""), Bytes({0, 0, 0, 0, 0, 0, 0, 1, 2, 0}));
}

TEST(EncodeFrame, RejectsOversizedPayload) {
  EXPECT_NO_THROW(EncodeFrame(1, FrameType::kRequest, std::string(kMaxMessageSize, 'x')));
  EXPECT_THROW(EncodeFrame(1, FrameType::kRequest, std::string(kMaxMessageSize + 1, 'x')),
               std::length_error);
}

TEST(FrameDecoder, ByteByByteFeedYieldsFramesInOrder) {
  const std::string wire = EncodeFrame(1, FrameType::kRequest, "hello") +
                           EncodeFrame(3, FrameType::kRequest, "") +
                           EncodeFrame(5, FrameType::kResponse, std::string(300, 'z'), 9);
  FrameDecoder d;
  std::vector<Frame> frames;
  for (char c : wire) {
    d.Feed(std::string_view(&c, 1));
    while (auto f = d.Next()) frames.push_back(std::get<Frame>(*f));
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].header.stream_id, 1u);
  EXPECT_EQ(frames[0].payload, "hello");
  EXPECT_EQ(frames[1].header.stream_id, 3u);
  EXPECT_EQ(frames[1].payload, "");
  EXPECT_EQ(frames[2].header.type, 2);
  EXPECT_EQ(frames[2].header.flags, 9);
  EXPECT_EQ(frames[2].payload, std::string(300, 'z'));
  EXPECT_TRUE(d.AtFrameBoundary());
}

TEST(FrameDecoder, PartialHeaderIsNotAFrameBoundary) {
  FrameDecoder d;
  d.Feed(Bytes({0, 0, 0}));
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_FALSE(d.AtFrameBoundary());
}

TEST(FrameDecoder, OversizedFrameIsReportedAndItsDataSkipped) {
  FrameDecoder d(16);
  const auto big = EncodeFrameHeader({17, 7, 1, 0});
  d.Feed(std::string_view(reinterpret_cast<const char*>(big.data()), big.size()));
  auto first = d.Next();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(std::holds_alternative<OversizedFrame>(*first));
  EXPECT_EQ(std::get<OversizedFrame>(*first).header.stream_id, 7u);
  EXPECT_EQ(std::get<OversizedFrame>(*first).header.length, 17u);
  // The 17 data bytes arrive in pieces, followed by a normal frame.
  d.Feed(std::string(10, 'x'));
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_FALSE(d.AtFrameBoundary());
  d.Feed(std::string(7, 'y') + EncodeFrame(9, FrameType::kRequest, "ok"));
  auto next = d.Next();
  ASSERT_TRUE(next.has_value());
  ASSERT_TRUE(std::holds_alternative<Frame>(*next));
  EXPECT_EQ(std::get<Frame>(*next).header.stream_id, 9u);
  EXPECT_EQ(std::get<Frame>(*next).payload, "ok");
  EXPECT_TRUE(d.AtFrameBoundary());
}

TEST(FrameDecoder, HugeAnnouncedLengthIsNeverBuffered) {
  FrameDecoder d;
  const auto h = EncodeFrameHeader({0xFFFFFFFF, 1, 1, 0});
  d.Feed(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
  ASSERT_TRUE(std::holds_alternative<OversizedFrame>(*d.Next()));
  for (int i = 0; i < 64; ++i) {
    d.Feed(std::string(1 << 16, 'a'));
    EXPECT_FALSE(d.Next().has_value());
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameDecoder, MaxSizedFrameIsAccepted) {
  FrameDecoder d;
  d.Feed(EncodeFrame(1, FrameType::kRequest, std::string(kMaxMessageSize, 'q')));
  auto f = d.Next();
  ASSERT_TRUE(f.has_value());
  ASSERT_TRUE(std::holds_alternative<Frame>(*f));
  EXPECT_EQ(std::get<Frame>(*f).payload.size(), kMaxMessageSize);
}

}  // namespace
}  // namespace uvmshim::ttrpc
