#include "uvm/qemu/command_line.h"

#include <fmt/format.h>

#include <initializer_list>

namespace uvmshim::uvm {

std::vector<std::string> BuildQemuCommandLine(const QemuCommandInputs& in) {
  std::vector<std::string> cmd = {in.qemu_binary};
  auto add = [&cmd](std::initializer_list<std::string> items) { cmd.insert(cmd.end(), items); };
  add({"-name", in.vm_name});
  std::string accel = in.kvm ? "kvm" : "tcg";
  for (const auto& property : in.accel_properties) accel += "," + property;
  add({"-machine", in.machine, "-accel", accel});
  if (in.kvm) add({"-cpu", "host"});
  if (!in.bios.empty()) add({"-bios", in.bios.string()});
  add({"-nodefaults", "-no-user-config", "-nographic", "-no-reboot"});
  add({"-m", std::to_string(in.memory_mb), "-smp", std::to_string(in.cpus)});
  add({"-kernel", in.kernel.string(), "-initrd", in.initrd.string()});
  add({"-append", fmt::format("{}", fmt::join(in.kernel_params, " "))});

  if (!in.console_log.empty())
    add({"-chardev", "file,id=console,path=" + in.console_log.string(), "-serial", "chardev:console"});
  add({"-chardev", "socket,id=qmp,path=" + in.qmp_socket.string() + ",server=on,wait=off",
       "-mon", "chardev=qmp,mode=control"});
  add({"-device", "virtio-serial-pci,id=vser0"});
  add({"-chardev", "socket,id=agent,path=" + in.agent_socket.string() + ",server=on,wait=off",
       "-device", "virtserialport,bus=vser0.0,chardev=agent,name=agent"});
  add({"-chardev", "socket,id=debug,path=" + in.debug_socket.string() + ",server=on,wait=off",
       "-device", "virtserialport,bus=vser0.0,chardev=debug,name=debug"});
  if (!in.stdio_socket.empty())
    add({"-chardev", "socket,id=stdio,path=" + in.stdio_socket.string() + ",server=on,wait=off",
         "-device", "virtserialport,bus=vser0.0,chardev=stdio,name=" + std::string(kBulkStdioPortName)});
  if (!in.virtiofs_socket.empty()) {
    // vhost-user-fs needs guest memory QEMU can share with virtiofsd.
    add({"-object", fmt::format("memory-backend-memfd,id=mem,size={}M,share=on", in.memory_mb),
         "-numa", "node,memdev=mem"});
    add({"-chardev", "socket,id=vfs,path=" + in.virtiofs_socket.string(),
         "-device", "vhost-user-fs-pci,chardev=vfs,tag=" + in.share_tag});
  }
  for (const auto& device : in.extra_devices) cmd.insert(cmd.end(), device.args.begin(), device.args.end());
  return cmd;
}

}  // namespace uvmshim::uvm
