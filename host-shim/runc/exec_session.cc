#include "runc/exec_session.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "paths.h"
#include "runc/control_channel.h"

namespace uvmshim::runc {
using nlohmann::json;

ExecSession::ExecSession(host::AgentClient& agent, std::string container_id, const json& request,
                         std::vector<UniqueFd> fds, int connection)
    : agent_(agent),
      container_id_(std::move(container_id)),
      exec_id_("exec-" + host::RandomId()),
      process_json_(request.value("process", "")),
      terminal_(request.value("terminal", false)),
      stdin_(request.value("stdin", false)),
      fds_(std::move(fds)),
      connection_(::dup(connection)) {
  if (!connection_) throw std::runtime_error("exec: dup of the control connection failed");
  if (process_json_.empty()) throw std::invalid_argument("exec: process is required");
  if (fds_.size() != (terminal_ ? 1u : 3u))
    throw std::invalid_argument(fmt::format("exec: {} stdio descriptors, expected {}", fds_.size(), terminal_ ? 1 : 3));
}

ExecSession::~ExecSession() {
  Abandon();
  if (waiter_.joinable()) waiter_.join();
  relay_.reset();
}

std::uint32_t ExecSession::Start() {
  host::agentpb::ExecProcessRequest exec;
  exec.set_container_id(container_id_);
  exec.set_exec_id(exec_id_);
  exec.set_process_json(process_json_);
  exec.set_terminal(terminal_);
  exec.set_stdin(stdin_);
  const std::uint32_t pid = agent_.ExecProcess(exec);
  host::StdioFds fds = terminal_ ? host::StdioFds{fds_[0].get(), fds_[0].get(), -1}
                                 : host::StdioFds{fds_[0].get(), fds_[1].get(), fds_[2].get()};
  relay_ = std::make_unique<host::StdioRelay>(agent_, container_id_, exec_id_, fds, terminal_);
  relay_->Start();
  waiter_ = std::thread([this] { WatchExit(); });
  return pid;
}

void ExecSession::WatchExit() {
  int status = 255;
  try {
    status = static_cast<int>(agent_.WaitProcess(container_id_, exec_id_).exit_status);
    relay_->WaitOutputDone();
  } catch (const std::exception& e) {
    spdlog::warn("{} {}: waiting: {}", container_id_, exec_id_, e.what());
  }
  exited_ = true;
  relay_->StopStdin();
  try {
    SendMessage(connection_.get(), {{"exit", status}});
  } catch (const std::exception& e) {
    spdlog::debug("{} {}: reporting the exit: {}", container_id_, exec_id_, e.what());
  }
}

void ExecSession::ServeConnection() {
  while (true) {
    std::optional<Message> message;
    try {
      message = ReceiveMessage(connection_.get());
    } catch (const std::exception&) {
    }
    if (!message) break;
    const std::string op = message->body.value("op", "");
    try {
      if (op == "signal")
        agent_.SignalProcess(container_id_, exec_id_, message->body.value("signal", SIGTERM), false);
      else if (op == "resize")
        agent_.ResizePty(container_id_, exec_id_, message->body.value("width", 80u), message->body.value("height", 24u));
    } catch (const std::exception& e) {
      spdlog::debug("{} {}: {}: {}", container_id_, exec_id_, op, e.what());
    }
  }
  if (!exited_) {  // the exec monitor was killed: so is its process
    try {
      agent_.SignalProcess(container_id_, exec_id_, SIGKILL, false);
    } catch (const std::exception&) {
    }
  }
}

void ExecSession::Abandon() { ::shutdown(connection_.get(), SHUT_RDWR); }

}  // namespace uvmshim::runc
