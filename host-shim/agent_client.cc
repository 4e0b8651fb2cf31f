#include "agent_client.h"

#include <fmt/format.h>

namespace uvmshim::host {
namespace {

void Check(const grpc::Status& status, std::string_view call, std::string_view subject) {
  if (status.ok()) return;
  const char* hint = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                         ? " (the agent did not answer in time: its VM or the agent is stalled)"
                         : "";
  throw AgentError(status.error_code(),
                   fmt::format("{} {}: {}{}", call, subject, status.error_message(), hint));
}

std::string Subject(const std::string& container_id, const std::string& exec_id) {
  return exec_id.empty() ? container_id : container_id + "/" + exec_id;
}

}  // namespace

bool IsUnanswered(const AgentError& error) {
  return error.code() == grpc::StatusCode::DEADLINE_EXCEEDED || error.code() == grpc::StatusCode::UNAVAILABLE;
}

AgentClient::AgentClient(std::shared_ptr<grpc::Channel> channel, AgentDeadlines deadlines)
    : channel_(std::move(channel)), stub_(agentpb::Agent::NewStub(channel_)), deadlines_(deadlines) {}

void AgentClient::Arm(grpc::ClientContext& ctx, std::chrono::milliseconds timeout) const {
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}

agentpb::VersionResponse AgentClient::Version(std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(true);
  agentpb::VersionResponse response;
  Check(stub_->Version(&ctx, {}, &response), "Version", "agent");
  return response;
}

bool AgentClient::Ping(std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(true);
  agentpb::PingResponse response;
  return stub_->Ping(&ctx, {}, &response).ok();
}

std::uint32_t AgentClient::CreateContainer(const agentpb::CreateContainerRequest& request) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.lifecycle);
  agentpb::CreateContainerResponse response;
  Check(stub_->CreateContainer(&ctx, request, &response), "CreateContainer",
        request.container_id());
  return response.pid();
}

std::uint32_t AgentClient::StartContainer(const std::string& container_id) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.lifecycle);
  agentpb::StartContainerRequest request;
  request.set_container_id(container_id);
  agentpb::StartContainerResponse response;
  Check(stub_->StartContainer(&ctx, request, &response), "StartContainer", container_id);
  return response.pid();
}

std::uint32_t AgentClient::ExecProcess(const agentpb::ExecProcessRequest& request) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.lifecycle);
  agentpb::ExecProcessResponse response;
  Check(stub_->ExecProcess(&ctx, request, &response), "ExecProcess",
        Subject(request.container_id(), request.exec_id()));
  return response.pid();
}

void AgentClient::SignalProcess(const std::string& container_id, const std::string& exec_id,
                                std::uint32_t signal, bool all) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);
  agentpb::SignalProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_signal(signal);
  request.set_all(all);
  agentpb::SignalProcessResponse response;
  Check(stub_->SignalProcess(&ctx, request, &response), "SignalProcess",
        Subject(container_id, exec_id));
}

ExitResult AgentClient::WaitProcess(const std::string& container_id,
                                    const std::string& exec_id) {
  grpc::ClientContext ctx;
  agentpb::WaitProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  agentpb::WaitProcessResponse response;
  Check(stub_->WaitProcess(&ctx, request, &response), "WaitProcess",
        Subject(container_id, exec_id));
  return {response.exit_status(), response.exited_at_unix_nano(), response.oom_killed()};
}

void AgentClient::UpdateContainer(const std::string& container_id, const std::string& resources_json) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);
  agentpb::UpdateContainerRequest request;
  request.set_container_id(container_id);
  request.set_resources_json(resources_json);
  agentpb::UpdateContainerResponse response;
  Check(stub_->UpdateContainer(&ctx, request, &response), "UpdateContainer", container_id);
}

void AgentClient::CloseStdin(const std::string& container_id, const std::string& exec_id) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);
  agentpb::CloseStdinRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  agentpb::CloseStdinResponse response;
  Check(stub_->CloseStdin(&ctx, request, &response), "CloseStdin",
        Subject(container_id, exec_id));
}

void AgentClient::ResizePty(const std::string& container_id, const std::string& exec_id,
                            std::uint32_t width, std::uint32_t height) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);
  agentpb::ResizePtyRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_width(width);
  request.set_height(height);
  agentpb::ResizePtyResponse response;
  Check(stub_->ResizePty(&ctx, request, &response), "ResizePty",
        Subject(container_id, exec_id));
}

agentpb::StatsResponse AgentClient::Stats(const std::string& container_id) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);
  agentpb::StatsRequest request;
  request.set_container_id(container_id);
  agentpb::StatsResponse response;
  Check(stub_->Stats(&ctx, request, &response), "Stats", container_id);
  return response;
}

agentpb::ListProcessesResponse AgentClient::ListProcesses(const std::string& container_id) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);
  agentpb::ListProcessesRequest request;
  request.set_container_id(container_id);
  agentpb::ListProcessesResponse response;
  Check(stub_->ListProcesses(&ctx, request, &response), "ListProcesses", container_id);
  return response;
}

void AgentClient::DeleteContainer(const std::string& container_id, bool force) {
  grpc::ClientContext ctx;
  Arm(ctx, deadlines_.call);  // force: kill + unmount, quick even under TCG
  agentpb::DeleteContainerRequest request;
  request.set_container_id(container_id);
  request.set_force(force);
  agentpb::DeleteContainerResponse response;
  Check(stub_->DeleteContainer(&ctx, request, &response), "DeleteContainer", container_id);
}

void AgentClient::Shutdown(std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  agentpb::ShutdownResponse response;
  Check(stub_->Shutdown(&ctx, {}, &response), "Shutdown", "agent");
}

}  // namespace uvmshim::host
