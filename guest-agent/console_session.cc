#include "guest-agent/console_session.h"

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <spdlog/spdlog.h>
#include <thread>

#include "guest-agent/launcher.h"
#include "guest-agent/process.h"
#include "common/error.h"

namespace uvmshim::agent {

namespace pb = ::uvmshim::agent::v1;

void RunConsoleSession(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<pb::ConsoleOutput, pb::ConsoleInput>* stream, Reaper& reaper) {
  pb::ConsoleInput first;
  if (!stream->Read(&first)) return;
  std::vector<std::string> command(first.command().begin(), first.command().end());
  if (command.empty()) command = {"/bin/sh"};
  auto process = std::make_shared<Process>("console", "", true);
  LaunchConsole(command, first.width(), first.height(), process, reaper);
  spdlog::info("event=console_started pid={} command={}", process->pid(), command.front());
  auto cancelled = [context] { return context->IsCancelled(); };

  std::mutex mu;
  std::condition_variable cv;
  bool input_done = false;
  std::thread input([&] {
    pb::ConsoleInput message = first;
    bool more = true;
    uint64_t written = 0;
    // A resize or a write the shell cannot take (it exited, closed its
    // terminal) is dropped: the session ends with the shell's exit.
    auto dropping_errors = [](auto&& call) {
      try {
        call();
      } catch (const Error& e) {
        spdlog::debug("event=console_input_dropped why=\"{}\"", e.what());
      }
    };
    while (more) {
      if (message.width() != 0 && message.height() != 0)
        dropping_errors([&] { process->ResizePty(message.width(), message.height()); });
      if (!message.data().empty()) dropping_errors([&] { process->WriteStdin(message.data(), cancelled, &written); });
      more = stream->Read(&message);
    }
    // The client closed its input: the shell gets EOF (unless it is gone).
    if (!process->exit() && !context->IsCancelled()) dropping_errors([&] { process->CloseStdin(); });
    std::lock_guard lock(mu);
    input_done = true;
    cv.notify_all();
  });

  auto sink = [&](std::string& data) {
    pb::ConsoleOutput out;
    out.mutable_data()->swap(data);
    bool ok = stream->Write(out);
    out.mutable_data()->swap(data);
    return ok;
  };
  bool output_ended = false;
  try {
    output_ended = process->ReadOutput(OutputKind::kStdout, sink, cancelled, nullptr);
  } catch (const Error& e) {  // a read error: end the shell as for a client gone
    spdlog::warn("event=console_output_failed pid={} why=\"{}\"", process->pid(), e.what());
  }
  std::optional<ProcessExit> exit;
  if (output_ended) exit = process->Wait(cancelled);
  if (exit) {
    pb::ConsoleOutput last;
    last.set_exited(true);
    last.set_exit_status(exit->exit_status);
    stream->Write(last);
  } else {
    // The client went away: end the shell.
    process->SignalQuietly(SIGHUP, reaper);
    if (!process->WaitExitFor(std::chrono::seconds(2))) process->SignalQuietly(SIGKILL, reaper);
    process->WaitExitFor(std::chrono::seconds(5));
  }
  {
    // Give the client time to half-close, then cut the stream so the input
    // thread's Read returns.
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return input_done; })) context->TryCancel();
  }
  input.join();
  spdlog::info("event=console_ended pid={} status={}", process->pid(), exit ? static_cast<int>(exit->exit_status) : -1);
  if (!exit) throw Error(ErrorCode::kCancelled, "console client went away");
}

}  // namespace uvmshim::agent
