#include "uvm/qemu/command_line.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace uvmshim::uvm {
namespace {

using Args = std::vector<std::string>;

QemuCommandInputs Minimal() {
  QemuCommandInputs in;
  in.qemu_binary = "/usr/bin/qemu-system-x86_64";
  in.vm_name = "uvmshim-vm1";
  in.memory_mb = 512;
  in.cpus = 2;
  in.kernel = "/img/vmlinuz";
  in.initrd = "/img/initrd.img";
  in.kernel_params = {"console=null", "panic=-1", "quiet"};
  in.qmp_socket = "/s/qmp.sock";
  in.agent_socket = "/s/agent.sock";
  in.debug_socket = "/s/debug.sock";
  return in;
}

// The serial ports every VM has, after the kernel.
const Args kPorts = {
    "-chardev", "socket,id=qmp,path=/s/qmp.sock,server=on,wait=off", "-mon", "chardev=qmp,mode=control",
    "-device", "virtio-serial-pci,id=vser0",
    "-chardev", "socket,id=agent,path=/s/agent.sock,server=on,wait=off",
    "-device", "virtserialport,bus=vser0.0,chardev=agent,name=agent",
    "-chardev", "socket,id=debug,path=/s/debug.sock,server=on,wait=off",
    "-device", "virtserialport,bus=vser0.0,chardev=debug,name=debug"};

Args Concat(Args head, const Args& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

TEST(QemuCommandLine, MinimalTcg) {
  const Args expected = Concat(
      {"/usr/bin/qemu-system-x86_64", "-name", "uvmshim-vm1", "-machine", "q35", "-accel", "tcg", "-nodefaults",
       "-no-user-config", "-nographic", "-no-reboot", "-m", "512", "-smp", "2", "-kernel", "/img/vmlinuz",
       "-initrd", "/img/initrd.img", "-append", "console=null panic=-1 quiet"},
      kPorts);
  EXPECT_EQ(BuildQemuCommandLine(Minimal()), expected);
}

TEST(QemuCommandLine, KvmBiosConsoleAndShare) {
  QemuCommandInputs in = Minimal();
  in.kvm = true;
  in.bios = "/usr/share/qemu/qboot.rom";
  in.console_log = "/state/console.log";
  in.virtiofs_socket = "/s/virtiofs.sock";
  in.share_tag = "share";
  const Args expected = Concat(
      Concat({"/usr/bin/qemu-system-x86_64", "-name", "uvmshim-vm1", "-machine", "q35", "-accel", "kvm", "-cpu",
              "host", "-bios", "/usr/share/qemu/qboot.rom", "-nodefaults", "-no-user-config", "-nographic",
              "-no-reboot", "-m", "512", "-smp", "2", "-kernel", "/img/vmlinuz", "-initrd", "/img/initrd.img",
              "-append", "console=null panic=-1 quiet", "-chardev",
              "file,id=console,path=/state/console.log", "-serial", "chardev:console"},
             kPorts),
      {"-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem", "-chardev",
       "socket,id=vfs,path=/s/virtiofs.sock", "-device", "vhost-user-fs-pci,chardev=vfs,tag=share"});
  EXPECT_EQ(BuildQemuCommandLine(in), expected);
}

TEST(QemuCommandLine, ExtensionPointsAppendInOrder) {
  QemuCommandInputs in = Minimal();
  in.accel_properties = {"tb-size=256"};
  in.extra_devices = {
      {{"-netdev", "tap,id=net0,fd=3", "-device", "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01"}},
      {{"-device", "virtio-balloon-pci,free-page-reporting=on"}}};
  const Args cmd = BuildQemuCommandLine(in);
  const Args tail(cmd.end() - 6, cmd.end());
  EXPECT_EQ(tail, (Args{"-netdev", "tap,id=net0,fd=3", "-device", "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01",
                        "-device", "virtio-balloon-pci,free-page-reporting=on"}));
  EXPECT_EQ(Args(cmd.begin() + 3, cmd.begin() + 7), (Args{"-machine", "q35", "-accel", "tcg,tb-size=256"}));
}

}  // namespace
}  // namespace uvmshim::uvm
