// A GUID in the Windows field layout, parsed and printed without Win32 so the
// HCS document builder and the hvsocket addressing are testable on Linux.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace uvmshim::uvm::hcs {

struct Guid {
  std::uint32_t data1 = 0;
  std::uint16_t data2 = 0;
  std::uint16_t data3 = 0;
  std::array<std::uint8_t, 8> data4{};

  friend auto operator<=>(const Guid&, const Guid&) = default;
};

// Accepts "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", optionally in braces, any
// letter case. nullopt for anything else (no partial parses).
std::optional<Guid> ParseGuid(std::string_view text);

// Like ParseGuid but throws VmError naming `what` and the offending text.
Guid ParseGuidOrThrow(std::string_view text, std::string_view what);

// Lower case, no braces: "00000ac9-facb-11e6-bd58-64006a7986d3".
std::string ToString(const Guid& guid);

// The 16 bytes as Windows keeps a GUID in memory: data1..data3 little-endian,
// then data4 as is.
std::array<std::uint8_t, 16> ToLittleEndianBytes(const Guid& guid);

}  // namespace uvmshim::uvm::hcs
