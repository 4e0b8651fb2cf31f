#include "common/mountinfo.h"

#include <fstream>
#include <iterator>
#include <sstream>

namespace uvmshim {
namespace {

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

}  // namespace

std::string UnescapeMountInfoField(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) &&
        IsOctal(field[i + 3])) {
      out += static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<MountInfoEntry> ParseMountInfo(std::string_view text) {
  std::vector<MountInfoEntry> entries;
  std::istringstream lines{std::string(text)};
  for (std::string line; std::getline(lines, line);) {
    // id parent major:minor root mount-point options [optional...] - type source super-options
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream head(line.substr(0, dash)), tail(line.substr(dash + 3));
    std::string id, parent, device, root, point, type, source;
    if (!(head >> id >> parent >> device >> root >> point) || !(tail >> type)) continue;
    tail >> source;
    entries.push_back({UnescapeMountInfoField(root), UnescapeMountInfoField(point), UnescapeMountInfoField(type),
                       UnescapeMountInfoField(source)});
  }
  return entries;
}

std::vector<MountInfoEntry> ReadMountInfo(const std::filesystem::path& file) {
  std::ifstream in(file);
  return ParseMountInfo(std::string(std::istreambuf_iterator<char>(in), {}));
}

}  // namespace uvmshim
