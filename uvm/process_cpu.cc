#include "uvm/process_cpu.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace uvmshim::uvm {

std::optional<std::chrono::milliseconds> ProcessCpuTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const auto name_end = stat.rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(name_end + 1));
  // After the name: state (3) ... utime (14) and stime (15), i.e. the 12th and 13th here.
  std::string skipped;
  for (int i = 0; i < 11; ++i) fields >> skipped;
  long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  if (ticks_per_second <= 0) return std::nullopt;
  return std::chrono::milliseconds((utime + stime) * 1000 / ticks_per_second);
}

}  // namespace uvmshim::uvm
