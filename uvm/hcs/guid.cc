#include "uvm/hcs/guid.h"

#include <cstdio>

#include "uvm/utility_vm.h"

namespace uvmshim::uvm::hcs {
namespace {

std::optional<unsigned> HexDigit(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<unsigned>(c - 'A' + 10);
  return std::nullopt;
}

// Parses exactly text.size() hex digits (at most 8) into a value.
std::optional<std::uint32_t> ParseHex(std::string_view text) {
  std::uint32_t value = 0;
  for (char c : text) {
    auto digit = HexDigit(c);
    if (!digit) return std::nullopt;
    value = (value << 4) | *digit;
  }
  return value;
}

}  // namespace

std::optional<Guid> ParseGuid(std::string_view text) {
  if (text.size() == 38) {
    if (text.front() != '{' || text.back() != '}') return std::nullopt;
    text = text.substr(1, 36);
  }
  if (text.size() != 36) return std::nullopt;
  if (text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') {
    return std::nullopt;
  }
  Guid guid;
  auto d1 = ParseHex(text.substr(0, 8));
  auto d2 = ParseHex(text.substr(9, 4));
  auto d3 = ParseHex(text.substr(14, 4));
  if (!d1 || !d2 || !d3) return std::nullopt;
  guid.data1 = *d1;
  guid.data2 = static_cast<std::uint16_t>(*d2);
  guid.data3 = static_cast<std::uint16_t>(*d3);
  // data4: two bytes before the last dash, six after it.
  const std::size_t offsets[8] = {19, 21, 24, 26, 28, 30, 32, 34};
  for (std::size_t i = 0; i < 8; ++i) {
    auto byte = ParseHex(text.substr(offsets[i], 2));
    if (!byte) return std::nullopt;
    guid.data4[i] = static_cast<std::uint8_t>(*byte);
  }
  return guid;
}

Guid ParseGuidOrThrow(std::string_view text, std::string_view what) {
  auto guid = ParseGuid(text);
  if (!guid) {
    throw VmError(std::string(what) + ": not a GUID: \"" + std::string(text.substr(0, 80)) +
                  "\"");
  }
  return *guid;
}

std::string ToString(const Guid& guid) {
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                static_cast<unsigned>(guid.data1), static_cast<unsigned>(guid.data2),
                static_cast<unsigned>(guid.data3), guid.data4[0], guid.data4[1], guid.data4[2],
                guid.data4[3], guid.data4[4], guid.data4[5], guid.data4[6], guid.data4[7]);
  return buf;
}

std::array<std::uint8_t, 16> ToLittleEndianBytes(const Guid& guid) {
  std::array<std::uint8_t, 16> out{};
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(guid.data1 >> (8 * i));
  for (int i = 0; i < 2; ++i) out[4 + i] = static_cast<std::uint8_t>(guid.data2 >> (8 * i));
  for (int i = 0; i < 2; ++i) out[6 + i] = static_cast<std::uint8_t>(guid.data3 >> (8 * i));
  for (int i = 0; i < 8; ++i) out[8 + i] = guid.data4[i];
  return out;
}

}  // namespace uvmshim::uvm::hcs
