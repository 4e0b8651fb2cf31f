#include "paths.h"

#include <unistd.h>

#include <cstdlib>
#include <fmt/format.h>
#include <random>
#include <regex>
#include <stdexcept>

namespace uvmshim::host {
namespace fs = std::filesystem;

fs::path SelfDir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

fs::path FindTool(const std::string& name, const char* env_var) {
  if (const char* value = std::getenv(env_var); value && *value) {
    if (!fs::exists(value))
      throw std::runtime_error(fmt::format("{}={}: no such file", env_var, value));
    return value;
  }
  std::string looked;
  auto sibling = SelfDir() / name;
  if (fs::exists(sibling)) return sibling;
  looked = sibling.string();
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      auto colon = rest.find(':');
      fs::path candidate = fs::path(rest.substr(0, colon)) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      rest = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
    }
  }
  throw std::runtime_error(fmt::format("{} not found (looked at ${}, {}, and PATH)", name,
                                       env_var, looked));
}

fs::path RuntimeRoot() {
  if (const char* value = std::getenv("UVMSHIM_ROOT"); value && *value) return value;
  return "/run/uvmshim";
}

fs::path ImagesDir() {
  if (const char* value = std::getenv("UVMSHIM_IMAGES"); value && *value) return value;
  for (fs::path dir : {SelfDir() / ".." / "images", fs::path("/usr/local/share/uvmshim"),
                       fs::path("/usr/share/uvmshim")}) {
    if (fs::exists(dir / "initrd.img")) return dir.lexically_normal();
  }
  return (SelfDir() / ".." / "images").lexically_normal();
}

bool IsValidId(const std::string& id) {
  static const std::regex kRule("[A-Za-z0-9]+([._-][A-Za-z0-9]+)*");
  return !id.empty() && id.size() <= 76 && std::regex_match(id, kRule);
}

std::string RandomId() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> digit(0, 15);
  std::string id;
  for (int i = 0; i < 12; ++i) id += "0123456789abcdef"[digit(device)];
  return id;
}

}  // namespace uvmshim::host
