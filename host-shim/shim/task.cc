#include "shim/task.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <system_error>
#include <thread>

namespace uvmshim::shim {
namespace fs = std::filesystem;

std::int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SetTimestamp(google::protobuf::Timestamp* ts, std::int64_t nanos) {
  ts->set_seconds(nanos / 1'000'000'000);
  ts->set_nanos(static_cast<std::int32_t>(nanos % 1'000'000'000));
}

void Process::StartRelay(host::AgentClient& agent, const std::string& container_id) {
  host::StdioFds fds{files->stdin_fd(), files->stdout_fd(), files->stderr_fd()};
  relay = std::make_unique<host::StdioRelay>(agent, container_id, exec_id, fds, stdio.terminal);
  relay->Start();
  if (stdin_closed) relay->FinishStdin();
}

Task::Task(std::string id_, std::string bundle_, std::shared_ptr<Sandbox> sandbox_)
    : id(std::move(id_)), bundle(std::move(bundle_)), sandbox(std::move(sandbox_)),
      agent(sandbox->agent()) {}

fs::path Task::state_dir() const { return host::StateDir(sandbox->ns(), id); }

void Task::SaveState() {
  try {
    host::WriteState(state_dir(), state);
  } catch (const std::exception& e) {
    spdlog::warn("task {}: saving state: {}", id, e.what());
  }
}

Task::~Task() {
  for (auto& [exec_id, process] : processes) {
    if (process->status == ProcessStatus::kRunning && !sandbox->stopped()) {
      try {
        agent->SignalProcess(id, exec_id, 9, exec_id.empty());
      } catch (const host::AgentError& e) {
        spdlog::debug("task {}: kill \"{}\": {}", id, exec_id, e.what());
        // Joining the process's waiter would hang on a stalled agent: end its host.
        if (host::IsUnanswered(e)) sandbox->Kill(fmt::format("SIGKILL of {} unanswered: {}", id, e.what()));
      }
    }
    if (process->waiter.joinable()) process->waiter.join();
    process->relay.reset();
  }
  // The sandbox's own task on a single-use VM: the VM is killed next, so the
  // guest's teardown of the container would only delay Delete.
  const bool vm_ends_next = owns_sandbox() && sandbox->single_use();
  // Gone from the agent, its poststop hooks run.
  bool container_gone = !created_in_agent;
  if (created_in_agent && !sandbox->stopped() && !vm_ends_next) {
    try {
      agent->DeleteContainer(id, true);
      container_gone = true;
    } catch (const host::AgentError& e) {
      spdlog::debug("task {}: delete in the agent: {}", id, e.what());
      if (host::IsUnanswered(e)) sandbox->Kill(fmt::format("delete of {} unanswered: {}", id, e.what()));
    }
  }
  if (prepared) sandbox->ReleaseContainer(id);
  if (owns_sandbox()) {
    // The rootfs's unmount syncs the filesystem under its upper layer
    // (overlayfs), 3-30 ms on a busy disk: in process isolation it runs while
    // the host agent ends, which no longer needs the host's mount once the
    // agent's container is gone (its processes dead, its poststop hooks run).
    // Otherwise the agent's shutdown may still run those hooks on the rootfs,
    // and a utility VM's share holds binds of it: in order.
    std::thread unmounting;
    if (container_gone && sandbox->isolation() == host::Isolation::kProcess) {
      try {
        unmounting = std::thread([this] { rootfs.Unmount(); });
      } catch (const std::system_error& e) {
        spdlog::debug("task {}: unmounting the rootfs inline: {}", id, e.what());
      }
    }
    if (!unmounting.joinable()) rootfs.Unmount();
    sandbox->Stop();  // ends the UVM / host agent and removes the sandbox's dirs
    if (unmounting.joinable()) unmounting.join();
  } else {
    rootfs.Unmount();
    if (auto kept = host::RemoveStateDir(state_dir(), host::EmptyParent::kRemove); !kept.empty())
      spdlog::error("task {}: {}", id, kept);
  }
  spdlog::info("task {}: torn down", id);
}

}  // namespace uvmshim::shim
