// uvm-snapshot-bench: boot_to_agent_ready against snapshot_restore_to_agent_ready
// for the real boot image (issue #15, step 5). Per run: boot a UVM (the same
// QEMU command line as QemuVm, without the virtiofs share: QEMU 7.2 cannot
// migrate a vhost-user-fs device) until its agent answers a Ping; migrate it
// to a file once the agent is ready (QMP `migrate exec:cat>FILE`); quit; start
// a new QEMU with `-incoming exec:cat FILE` and time it to the agent's Ping.
// Prints "boot_to_agent_ready_ms X snapshot_restore_to_agent_ready_ms Y
// snapshot_mib Z" (medians).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "agent.grpc.pb.h"
#include "uvm/agent_channel.h"
#include "uvm/qemu/command_line.h"
#include "uvm/qemu/host_probe.h"
#include "uvm/qemu_vm.h"
#include "uvm/qemu_vm_snapshot.h"
#include "uvm/qmp_client.h"
#include "uvm/serial_connect.h"

namespace fs = std::filesystem;
using namespace uvmshim;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

pid_t Spawn(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

void Reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

// Connects to the agent port and waits for a Ping answer; ms since `start`.
double TimeToAgent(const fs::path& agent_socket, Clock::time_point start) {
  std::shared_ptr<grpc::Channel> channel;
  // The guest's port can drop the very first host connection while it comes
  // up ("closed by the VM during the reset handshake"): one more try.
  for (int attempt = 0; !channel; ++attempt) {
    try {
      channel = uvm::ConnectSerialChannel("unix://" + agent_socket.string(), 300s, uvm::AgentChannelArguments());
    } catch (const std::exception&) {
      if (attempt == 2) throw;
    }
  }
  auto stub = agent::v1::Agent::NewStub(channel);
  agent::v1::PingRequest request;
  agent::v1::PingResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 60s);
  const auto status = stub->Ping(&context, request, &response);
  if (!status.ok()) throw std::runtime_error("Ping: " + status.error_message());
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void WaitForSocket(const fs::path& path) {
  for (int i = 0; i < 3000 && !fs::exists(path); ++i) std::this_thread::sleep_for(10ms);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path images = "images";
  unsigned runs = 3;
  unsigned memory_mb = 256;
  CLI::App app{"uvm-snapshot-bench: cold boot vs snapshot restore to agent ready"};
  app.add_option("--images", images, "dir with vmlinuz and initrd.img");
  app.add_option("--runs", runs, "samples");
  app.add_option("--memory", memory_mb, "guest MiB");
  CLI11_PARSE(app, argc, argv);

  char pattern[] = "/tmp/uvm-snap.XXXXXX";
  const fs::path dir = ::mkdtemp(pattern);
  uvm::QemuOptions options;
  uvm::QemuCommandInputs in;
  in.qemu_binary = options.qemu_binary;
  in.vm_name = "uvmshim-snapshot-bench";
  std::string why_not;
  in.kvm = uvm::KvmUsable(why_not);
  if (!in.kvm) in.accel_properties.push_back(fmt::format("tb-size={}", options.tcg_tb_size_mb));
  if (fs::exists(options.bios)) in.bios = options.bios;
  in.memory_mb = memory_mb;
  in.kernel = fs::absolute(images / "vmlinuz");
  in.initrd = fs::absolute(images / "initrd.img");
  in.kernel_params = {"console=ttyS0", "panic=-1", "quiet", options.boot_params, "uvm.listen=" + options.agent_listen,
                      "uvm.log=info"};
  in.console_log = dir / "console.log";
  in.qmp_socket = dir / "qmp.sock";
  in.agent_socket = dir / "agent.sock";
  in.debug_socket = dir / "debug.sock";
  in.extra_devices.push_back({{"-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=on"}});
  // As the warm pool's snapshots (QemuOptions::share_hotplug): RAM in a shared memfd, a hot-plug port.
  in.extra_devices.push_back(uvm::HotplugShareDevices(memory_mb));
  const auto command = uvm::BuildQemuCommandLine(in);
  const fs::path snapshot = dir / "snapshot.bin";

  std::vector<double> boots, restores, sizes;
  int rc = 0;
  pid_t qemu = 0;  // the VM running now: killed whatever happens
  try {
    for (unsigned run = 0; run < runs; ++run) {
      fs::remove(snapshot);
      for (const char* s : {"qmp.sock", "agent.sock", "debug.sock"}) fs::remove(dir / s);
      auto start = Clock::now();
      qemu = Spawn(command, dir / "qemu.log");
      WaitForSocket(in.agent_socket);
      boots.push_back(TimeToAgent(in.agent_socket, start));
      {
        uvm::QmpClient qmp(in.qmp_socket, 10s);
        qmp.Execute("migrate", {{"uri", "exec:cat > " + snapshot.string()}});
        for (int i = 0; i < 6000; ++i) {
          const auto status = qmp.Execute("query-migrate").value("status", std::string());
          if (status == "completed") break;
          if (status == "failed") throw std::runtime_error("migration failed: " + qmp.Execute("query-migrate").dump());
          std::this_thread::sleep_for(20ms);
        }
      }
      Reap(qemu);
      qemu = 0;
      sizes.push_back(static_cast<double>(fs::file_size(snapshot)) / (1 << 20));
      for (const char* s : {"qmp.sock", "agent.sock", "debug.sock"}) fs::remove(dir / s);

      auto restore_command = command;
      restore_command.insert(restore_command.end(), {"-incoming", "exec:cat " + snapshot.string()});
      start = Clock::now();
      qemu = Spawn(restore_command, dir / "qemu.log");
      WaitForSocket(in.agent_socket);
      restores.push_back(TimeToAgent(in.agent_socket, start));
      Reap(qemu);
      qemu = 0;
      std::fprintf(stderr, "run %u: boot %.0f ms, restore %.0f ms, snapshot %.1f MiB\n", run, boots.back(),
                   restores.back(), sizes.back());
    }
    std::printf("boot_to_agent_ready_ms %.1f snapshot_restore_to_agent_ready_ms %.1f snapshot_mib %.1f\n",
                Median(boots), Median(restores), Median(sizes));
  } catch (const std::exception& e) {
    if (qemu > 0) Reap(qemu);
    std::fprintf(stderr, "uvm-snapshot-bench: %s (logs in %s)\n", e.what(), dir.c_str());
    return 1;
  }
  fs::remove_all(dir);
  return rc;
}
