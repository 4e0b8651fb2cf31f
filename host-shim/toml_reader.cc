#include "toml_reader.h"

#include <sstream>

namespace uvmshim::host {

std::shared_ptr<cpptoml::table> ParseTomlDocument(const std::string& toml_text, const std::string& origin) {
  try {
    std::istringstream in(toml_text);
    cpptoml::parser parser(in);
    return parser.parse();
  } catch (const cpptoml::parse_exception& e) {
    throw std::invalid_argument(fmt::format("{}: {}", origin, e.what()));
  } catch (const std::out_of_range& e) {  // cpptoml's stoll/stod on a number too large
    throw std::invalid_argument(fmt::format("{}: a number is out of range ({})", origin, e.what()));
  }
}

void RejectUnknown(const cpptoml::table& table, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : table) {
    if (!known.contains(key)) throw std::invalid_argument(fmt::format("{}: unknown key \"{}\"", where, key));
  }
}

unsigned ReadPositive(const cpptoml::table& table, const std::string& key, unsigned fallback,
                      const std::string& where) {
  std::int64_t value = fallback;
  Read(table, key, value, where);
  if (value <= 0 || value > (1 << 20))
    throw std::invalid_argument(fmt::format("{}: \"{}\" = {} is out of range", where, key, value));
  return static_cast<unsigned>(value);
}

std::vector<std::string> ReadStrings(const cpptoml::table& table, const std::string& key,
                                     std::vector<std::string> fallback, const std::string& where) {
  if (!table.contains(key)) return fallback;
  auto values = table.get_array_of<std::string>(key);
  if (!values) throw std::invalid_argument(fmt::format("{}: \"{}\" must be an array of strings", where, key));
  return *values;
}

}  // namespace uvmshim::host
