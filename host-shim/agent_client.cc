#include "agent_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

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

// One unary call: a deadline (none for nullopt), the call, its status
// checked (AgentError naming the call and its subject).
template <typename Response, typename Invoke>
Response Unary(std::optional<std::chrono::milliseconds> timeout, std::string_view call, std::string_view subject,
               Invoke&& invoke) {
  grpc::ClientContext ctx;
  if (timeout) ctx.set_deadline(std::chrono::system_clock::now() + *timeout);
  Response response;
  Check(invoke(&ctx, &response), call, subject);
  return response;
}

}  // namespace

AgentDeadlines ScaledForStartup(AgentDeadlines configured, std::chrono::milliseconds startup) {
  configured.lifecycle = std::max(configured.lifecycle, startup * kLifecyclePerStartup);
  return configured;
}

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
  return Unary<agentpb::CreateContainerResponse>(
             deadlines_.lifecycle, "CreateContainer", request.container_id(),
             [&](auto* ctx, auto* response) { return stub_->CreateContainer(ctx, request, response); })
      .pid();
}

std::uint32_t AgentClient::StartContainer(const std::string& container_id) {
  agentpb::StartContainerRequest request;
  request.set_container_id(container_id);
  return Unary<agentpb::StartContainerResponse>(
             deadlines_.lifecycle, "StartContainer", container_id,
             [&](auto* ctx, auto* response) { return stub_->StartContainer(ctx, request, response); })
      .pid();
}

std::uint32_t AgentClient::ExecProcess(const agentpb::ExecProcessRequest& request) {
  return Unary<agentpb::ExecProcessResponse>(
             deadlines_.lifecycle, "ExecProcess", Subject(request.container_id(), request.exec_id()),
             [&](auto* ctx, auto* response) { return stub_->ExecProcess(ctx, request, response); })
      .pid();
}

void AgentClient::SignalProcess(const std::string& container_id, const std::string& exec_id,
                                std::uint32_t signal, bool all) {
  agentpb::SignalProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_signal(signal);
  request.set_all(all);
  Unary<agentpb::SignalProcessResponse>(deadlines_.call, "SignalProcess", Subject(container_id, exec_id),
                                        [&](auto* ctx, auto* response) { return stub_->SignalProcess(ctx, request, response); });
}

ExitResult AgentClient::WaitProcess(const std::string& container_id,
                                    const std::string& exec_id) {
  agentpb::WaitProcessRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  // No deadline: a process may run for as long as it likes.
  const auto response = Unary<agentpb::WaitProcessResponse>(
      std::nullopt, "WaitProcess", Subject(container_id, exec_id),
      [&](auto* ctx, auto* out) { return stub_->WaitProcess(ctx, request, out); });
  return {response.exit_status(), response.exited_at_unix_nano(), response.oom_killed()};
}

void AgentClient::UpdateContainer(const std::string& container_id, const std::string& resources_json) {
  agentpb::UpdateContainerRequest request;
  request.set_container_id(container_id);
  request.set_resources_json(resources_json);
  Unary<agentpb::UpdateContainerResponse>(deadlines_.call, "UpdateContainer", container_id,
                                          [&](auto* ctx, auto* response) { return stub_->UpdateContainer(ctx, request, response); });
}

void AgentClient::CloseStdin(const std::string& container_id, const std::string& exec_id) {
  agentpb::CloseStdinRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  Unary<agentpb::CloseStdinResponse>(deadlines_.call, "CloseStdin", Subject(container_id, exec_id),
                                     [&](auto* ctx, auto* response) { return stub_->CloseStdin(ctx, request, response); });
}

void AgentClient::ResizePty(const std::string& container_id, const std::string& exec_id,
                            std::uint32_t width, std::uint32_t height) {
  agentpb::ResizePtyRequest request;
  request.set_container_id(container_id);
  request.set_exec_id(exec_id);
  request.set_width(width);
  request.set_height(height);
  Unary<agentpb::ResizePtyResponse>(deadlines_.call, "ResizePty", Subject(container_id, exec_id),
                                    [&](auto* ctx, auto* response) { return stub_->ResizePty(ctx, request, response); });
}

agentpb::StatsResponse AgentClient::Stats(const std::string& container_id) {
  agentpb::StatsRequest request;
  request.set_container_id(container_id);
  return Unary<agentpb::StatsResponse>(deadlines_.call, "Stats", container_id,
                                       [&](auto* ctx, auto* response) { return stub_->Stats(ctx, request, response); });
}

agentpb::ListProcessesResponse AgentClient::ListProcesses(const std::string& container_id) {
  agentpb::ListProcessesRequest request;
  request.set_container_id(container_id);
  return Unary<agentpb::ListProcessesResponse>(
      deadlines_.call, "ListProcesses", container_id,
      [&](auto* ctx, auto* response) { return stub_->ListProcesses(ctx, request, response); });
}

void AgentClient::DeleteContainer(const std::string& container_id, bool force) {
  agentpb::DeleteContainerRequest request;
  request.set_container_id(container_id);
  request.set_force(force);
  // force: kill + unmount, quick even under TCG
  Unary<agentpb::DeleteContainerResponse>(deadlines_.call, "DeleteContainer", container_id,
                                          [&](auto* ctx, auto* response) { return stub_->DeleteContainer(ctx, request, response); });
}

void AgentClient::Shutdown(std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  agentpb::ShutdownResponse response;
  Check(stub_->Shutdown(&ctx, {}, &response), "Shutdown", "agent");
}

}  // namespace uvmshim::host
