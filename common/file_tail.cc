#include "common/file_tail.h"

#include <algorithm>
#include <deque>
#include <fstream>
#include <iterator>
#include <sstream>

namespace uvmshim {

std::string ReadFileTail(const std::filesystem::path& file, TailLimits limits) {
  std::ifstream in(file, std::ios::binary);
  if (!in || limits.max_lines == 0) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  in.seekg(std::max<std::streamoff>(0, size - static_cast<std::streamoff>(limits.max_bytes)));
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  std::deque<std::string> tail;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tail.push_back(std::move(line));
    if (tail.size() > limits.max_lines) tail.pop_front();
  }
  std::string out;
  for (const auto& kept : tail) out += kept + "\n";
  return out;
}

}  // namespace uvmshim
