#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "containerd/task/v2/shim.pb.h"
#include "ttrpc/protocol.h"

namespace uvmshim::ttrpc {
namespace {

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

// A ttrpc.Request built by hand from the field numbers: service=1, method=2,
// payload=3, timeout_nano=4 (varint), metadata=5 (KeyValue key=1 value=2).
std::string HandBuiltWaitRequest() {
  std::string s;
  s += Bytes({0x0a, 23}) + "containerd.task.v2.Task";
  s += Bytes({0x12, 4}) + "Wait";
  s += Bytes({0x1a, 4}) + Bytes({0x0a, 2}) + "c1";  // WaitRequest{id="c1"}
  s += Bytes({0x20, 0x80, 0x94, 0xEB, 0xDC, 0x03});   // 1e9 ns
  s += Bytes({0x2a, 37}) + Bytes({0x0a, 26}) + "containerd-namespace-ttrpc" + Bytes({0x12, 7}) + "default";
  return s;
}

TEST(Protocol, ParsesHandBuiltRequest) {
  auto req = DecodeRequest(HandBuiltWaitRequest());
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->service, "containerd.task.v2.Task");
  EXPECT_EQ(req->method, "Wait");
  EXPECT_EQ(req->timeout_nano, 1000000000);
  ASSERT_EQ(req->metadata.size(), 1u);
  EXPECT_EQ(req->metadata[0].first, "containerd-namespace-ttrpc");
  EXPECT_EQ(FindMetadata(req->metadata, kNamespaceMetadataKey), "default");
  containerd::task::v2::WaitRequest wait;
  ASSERT_TRUE(wait.ParseFromString(req->payload));
  EXPECT_EQ(wait.id(), "c1");
}

TEST(Protocol, EncodesRequestByteExactly) {
  containerd::task::v2::WaitRequest wait;
  wait.set_id("c1");
  RequestMessage req{"containerd.task.v2.Task", "Wait", wait.SerializeAsString(), 1000000000,
                     {{"containerd-namespace-ttrpc", "default"}}};
  EXPECT_EQ(EncodeRequest(req), HandBuiltWaitRequest());
}

TEST(Protocol, ErrorResponseCarriesGoogleRpcStatus) {
  // Response.status=1 { code=1: 12, message=2: "x" }
  const std::string expected = Bytes({0x0a, 5, 0x08, 12, 0x12, 1}) + "x";
  EXPECT_EQ(EncodeResponse(Result(Status(Code::kUnimplemented, "x"))), expected);
  auto back = DecodeResponse(expected);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->status.code, 12);
  EXPECT_EQ(back->status.message, "x");
}

TEST(Protocol, SuccessResponseHasNoStatusField) {
  EXPECT_EQ(EncodeResponse(Result::Ok("ab")), Bytes({0x12, 2}) + "ab");
  EXPECT_EQ(EncodeResponse(Result::Ok("")), "");
  // A status with code 0 also means success.
  auto r = DecodeResponse(Bytes({0x0a, 2, 0x12, 0}) + Bytes({0x12, 1}) + "p");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->payload, "p");
}

TEST(Protocol, RejectsMalformedMessages) {
  EXPECT_FALSE(DecodeRequest(Bytes({0x0a, 50, 'a'})).has_value());  // length past the end
  EXPECT_FALSE(DecodeRequest(Bytes({0x0f})).has_value());           // wire type 7
  EXPECT_FALSE(DecodeResponse(Bytes({0x0a, 0x80})).has_value());    // truncated varint
}

TEST(Protocol, OversizedStatusTextMatchesContainerd) {
  const Status s = OversizedStatus(5000000);
  EXPECT_EQ(s.code, 8);
  EXPECT_EQ(s.message, "message length 5000000 exceed maximum message size of 4194304");
}

TEST(ClassifyServerFrame, WellFormedRequest) {
  auto action = ClassifyServerFrame(Frame{{0, 7, 1, 0}, HandBuiltWaitRequest()});
  ASSERT_TRUE(std::holds_alternative<ServerRequest>(action));
  EXPECT_EQ(std::get<ServerRequest>(action).stream_id, 7u);
  EXPECT_EQ(std::get<ServerRequest>(action).request.method, "Wait");
}

TEST(ClassifyServerFrame, OversizedGetsResourceExhausted) {
  auto action = ClassifyServerFrame(OversizedFrame{{kMaxMessageSize + 1, 5, 1, 0}});
  ASSERT_TRUE(std::holds_alternative<ServerReply>(action));
  EXPECT_EQ(std::get<ServerReply>(action).stream_id, 5u);
  EXPECT_TRUE(std::get<ServerReply>(action).status.Is(Code::kResourceExhausted));
}

TEST(ClassifyServerFrame, GarbageHeaderClosesConnectionInsteadOfSkipping) {
  // "GET / HTTP/1.1" read as a header: a huge length and type 'T'.
  auto action = ClassifyServerFrame(OversizedFrame{{0x47455420, 0x2f204854, 'T', 0x54}});
  ASSERT_TRUE(std::holds_alternative<ServerProtocolError>(action));
  EXPECT_FALSE(std::get<ServerProtocolError>(action).last_reply.has_value());
}

TEST(ClassifyServerFrame, WrongTypeClosesConnection) {
  auto action = ClassifyServerFrame(Frame{{0, 1, 2, 0}, ""});
  ASSERT_TRUE(std::holds_alternative<ServerProtocolError>(action));
  EXPECT_FALSE(std::get<ServerProtocolError>(action).last_reply.has_value());
}

TEST(ClassifyServerFrame, GarbagePayloadIsAnsweredThenClosed) {
  auto action = ClassifyServerFrame(Frame{{0, 3, 1, 0}, Bytes({0xff, 0xff, 0xff})});
  ASSERT_TRUE(std::holds_alternative<ServerProtocolError>(action));
  const auto& err = std::get<ServerProtocolError>(action);
  ASSERT_TRUE(err.last_reply.has_value());
  EXPECT_EQ(err.last_reply->stream_id, 3u);
  EXPECT_TRUE(err.last_reply->status.Is(Code::kInvalidArgument));
}

TEST(ClassifyServerFrame, EvenStreamIdIsRefused) {
  auto action = ClassifyServerFrame(Frame{{0, 2, 1, 0}, HandBuiltWaitRequest()});
  ASSERT_TRUE(std::holds_alternative<ServerReply>(action));
  EXPECT_TRUE(std::get<ServerReply>(action).status.Is(Code::kInvalidArgument));
}

}  // namespace
}  // namespace uvmshim::ttrpc
