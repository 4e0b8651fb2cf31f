#include "shim/agent_status.h"

#include <gtest/gtest.h>

namespace uvmshim::shim {
namespace {

TEST(AgentStatus, EachAgentCodeKeepsItsMeaning) {
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::NOT_FOUND), ttrpc::Code::kNotFound);
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::ALREADY_EXISTS), ttrpc::Code::kAlreadyExists);
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::FAILED_PRECONDITION), ttrpc::Code::kFailedPrecondition);
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::INVALID_ARGUMENT), ttrpc::Code::kInvalidArgument);
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::UNAVAILABLE), ttrpc::Code::kUnavailable);
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::CANCELLED), ttrpc::Code::kCanceled);
  EXPECT_EQ(TtrpcCodeFor(grpc::StatusCode::DO_NOT_USE), ttrpc::Code::kUnknown);
}

TEST(AgentStatus, MessageIsKept) {
  const ttrpc::Status status =
      FromAgentError(host::AgentError(grpc::StatusCode::NOT_FOUND, "Signal c1: container c1 not found"));
  EXPECT_TRUE(status.Is(ttrpc::Code::kNotFound));
  EXPECT_EQ(status.message, "Signal c1: container c1 not found");
}

}  // namespace
}  // namespace uvmshim::shim
