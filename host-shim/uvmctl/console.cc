#include "uvmctl/console.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <fmt/format.h>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "agent_client.h"
#include "signal_forwarder.h"
#include "terminal.h"
#include "common/unique_fd.h"

namespace uvmshim::uvmctl {

int Console(const host::SandboxState& sandbox, const std::vector<std::string>& command) {
  if (sandbox.debug_target.empty())
    throw std::runtime_error(fmt::format("{}: its sandbox has no debug connection", sandbox.id));
  // gRPC's threads inherit this mask: with SIGWINCH blocked in all of them, it
  // reaches the forwarder's signalfd instead of being dropped by one of them.
  sigset_t winch;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  pthread_sigmask(SIG_BLOCK, &winch, nullptr);
  auto channel = host::ConnectAgent(sandbox.debug_target);
  host::AgentClient agent(channel);
  if (!agent.Ping(std::chrono::seconds(10)))
    throw std::runtime_error(fmt::format("{}: the agent at {} does not answer", sandbox.id,
                                         sandbox.debug_target));
  grpc::ClientContext ctx;
  auto stream = agent.stub().Console(&ctx);
  std::mutex write_mutex;
  auto send = [&](const host::agentpb::ConsoleInput& input) {
    std::lock_guard lock(write_mutex);
    return stream->Write(input);
  };

  std::atomic<bool> live{true};
  host::SignalForwarder forwarder([&](int signal) {
    if (signal != SIGWINCH || !live) return;
    if (auto size = host::WindowSize(STDIN_FILENO)) {
      host::agentpb::ConsoleInput resize;
      resize.set_width(size->first);
      resize.set_height(size->second);
      send(resize);
    }
  });

  host::agentpb::ConsoleInput first;
  for (const auto& arg : command) first.add_command(arg);
  if (auto size = host::WindowSize(STDIN_FILENO)) {
    first.set_width(size->first);
    first.set_height(size->second);
  }
  if (!send(first)) throw std::runtime_error("console: the agent closed the stream");

  host::RawTerminal raw(STDIN_FILENO);
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
  std::thread input([&] {
    std::string buffer(4096, '\0');
    for (;;) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
      if (n <= 0) {
        std::lock_guard lock(write_mutex);
        stream->WritesDone();
        return;
      }
      host::agentpb::ConsoleInput data;
      data.set_data(buffer.data(), static_cast<std::size_t>(n));
      if (!send(data)) return;
    }
  });

  int exit_status = 0;
  host::agentpb::ConsoleOutput output;
  while (stream->Read(&output)) {
    if (!output.data().empty())
      [[maybe_unused]] auto n = ::write(STDOUT_FILENO, output.data().data(), output.data().size());
    if (output.exited()) {
      exit_status = static_cast<int>(output.exit_status());
      break;
    }
  }
  live = false;
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop.get(), &one, sizeof one);
  input.join();
  ctx.TryCancel();
  stream->Finish();
  return exit_status;
}

}  // namespace uvmshim::uvmctl
