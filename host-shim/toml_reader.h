// The one way the host reads its TOML files (the shim's runtime config,
// uvmctl's network config): parse errors and wrong types become
// std::invalid_argument naming the file, table and key; unknown keys are
// errors (a typo must not silently fall back to a default).
#pragma once

#include <cpptoml.h>
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace uvmshim::host {

// Parses `toml_text`; `origin` (a file name) prefixes every error.
std::shared_ptr<cpptoml::table> ParseTomlDocument(const std::string& toml_text, const std::string& origin);

// Throws for a key of `table` that is not in `known`; `where` is "file [table]".
void RejectUnknown(const cpptoml::table& table, const std::set<std::string>& known, const std::string& where);

// Reads `key` into `out` when present; a value of another type is an error.
template <typename T>
void Read(const cpptoml::table& table, const std::string& key, T& out, const std::string& where) {
  if (!table.contains(key)) return;
  auto value = table.get_as<T>(key);
  if (!value) throw std::invalid_argument(fmt::format("{}: \"{}\" has the wrong type", where, key));
  out = *value;
}

// An integer in 1..2^20, `fallback` when absent.
unsigned ReadPositive(const cpptoml::table& table, const std::string& key, unsigned fallback,
                      const std::string& where);

// An array of strings, `fallback` when absent.
std::vector<std::string> ReadStrings(const cpptoml::table& table, const std::string& key,
                                     std::vector<std::string> fallback, const std::string& where);

}  // namespace uvmshim::host
