#include "guest-agent/vm/kernel_cmdline.h"

#include <stdexcept>

namespace uvmshim::agent::vm {

std::vector<std::string> SplitKernelCmdline(std::string_view cmdline) {
  std::vector<std::string> words;
  std::string word;
  bool in_quotes = false;
  bool have_word = false;
  for (char c : cmdline) {
    if (c == '"') {
      in_quotes = !in_quotes;
      have_word = true;
    } else if (!in_quotes && (c == ' ' || c == '\n' || c == '\t')) {
      if (have_word) words.push_back(std::move(word));
      word.clear();
      have_word = false;
    } else {
      word += c;
      have_word = true;
    }
  }
  if (have_word) words.push_back(std::move(word));
  return words;
}

VmSettings ParseVmSettings(std::string_view cmdline) {
  VmSettings settings;
  for (const std::string& word : SplitKernelCmdline(cmdline)) {
    const auto eq = word.find('=');
    const std::string key = word.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : word.substr(eq + 1);
    if (key.rfind("uvm.", 0) != 0) continue;
    if (key == "uvm.listen") {
      std::string_view rest = value;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const auto item = rest.substr(0, comma);
        if (!item.empty()) settings.listen.emplace_back(item);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      if (value.empty()) throw std::invalid_argument("kernel parameter uvm.listen: empty address");
    } else if (key == "uvm.log") {
      if (value.empty()) throw std::invalid_argument("kernel parameter uvm.log: empty level");
      settings.log_level = value;
    } else if (key == "uvm.rootfs") {
      if (value.empty()) throw std::invalid_argument("kernel parameter uvm.rootfs: empty value");
      settings.rootfs_tag = value;
    } else if (key == "uvm.rootfs_ro") {
      if (value != "0" && value != "1")
        throw std::invalid_argument("kernel parameter uvm.rootfs_ro=" + value + ": expected 0 or 1");
      settings.rootfs_read_only = value == "1";
    } else if (key == "uvm.share") {
      if (value.empty()) throw std::invalid_argument("kernel parameter uvm.share: empty virtiofs tag");
      settings.share_tag = value;
    } else if (key == "uvm.modules") {
      if (value != "on" && value != "off")
        throw std::invalid_argument("kernel parameter uvm.modules=" + value + ": expected on or off");
      settings.load_modules = value == "on";
    } else if (key == "uvm.stdio") {
      if (value.rfind("/dev/", 0) != 0)
        throw std::invalid_argument("kernel parameter uvm.stdio=" + value + ": expected a /dev/ path of a virtio-serial port");
      settings.stdio_port = value;
    } else if (key == "uvm.warmup") {
      if (value != "0" && value != "1")
        throw std::invalid_argument("kernel parameter uvm.warmup=" + value + ": expected 0 or 1");
      settings.warm_up = value == "1";
    }
  }
  return settings;
}

}  // namespace uvmshim::agent::vm
