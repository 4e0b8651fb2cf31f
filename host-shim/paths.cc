#include "paths.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fmt/format.h>
#include <random>
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

fs::path SocketDirFor(const fs::path& owner) {
  // sun_path holds 107 bytes; our longest socket name is "virtiofs.sock".
  constexpr std::size_t kLongestName = sizeof("/virtiofs.sock") - 1;
  if (owner.native().size() + kLongestName <= 107) return owner;
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a of the full path: stable, distinct per root
  for (char c : owner.native()) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return fs::path(kShortSocketRoot) / fmt::format("{:016x}", hash);
}

fs::path ShimSocketPath(const std::string& ns, const std::string& id) {
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (char c : RuntimeRoot().native() + "\n" + ns + "/" + id)
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  const std::string name = fmt::format("{:016x}.sock", hash);
  fs::path dir = RuntimeRoot() / "s";
  if ((dir / name).native().size() > 107) dir = kShortSocketRoot;
  return dir / name;
}

std::string RandomId() {
  std::random_device device;
  std::uniform_int_distribution<unsigned> digit(0, 15);
  std::string id;
  for (int i = 0; i < 12; ++i) id += "0123456789abcdef"[digit(device)];
  return id;
}

}  // namespace uvmshim::host
