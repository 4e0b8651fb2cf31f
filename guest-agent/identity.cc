#include "guest-agent/identity.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "common/error.h"
#include "common/ids.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {
namespace {

constexpr std::size_t kMinEntropy = 16;
constexpr std::size_t kMaxEntropy = 512;

[[noreturn]] void Invalid(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }
// kInternal whatever errno says: each is the guest failing, not the caller.
[[noreturn]] void Failed(const std::string& what) {
  throw Error(ErrorCode::kInternal, what + ": " + std::strerror(errno));
}

bool IsMachineId(const std::string& text) {
  if (text.size() != 32) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return text != std::string(32, '0');
}

// RNDADDENTROPY both mixes the bytes in and credits them, so getrandom()
// in the guest is seeded from the host even right after a snapshot restore.
void AddEntropy(const std::string& bytes) {
  UniqueFd random(::open("/dev/urandom", O_WRONLY | O_CLOEXEC));
  if (!random) Failed("open /dev/urandom");
  std::vector<char> buffer(sizeof(rand_pool_info) + bytes.size());
  auto* info = reinterpret_cast<rand_pool_info*>(buffer.data());
  info->entropy_count = static_cast<int>(bytes.size() * 8);
  info->buf_size = static_cast<int>(bytes.size());
  std::memcpy(info->buf, bytes.data(), bytes.size());
  const int rc = ::ioctl(random.get(), RNDADDENTROPY, info);
  std::memset(buffer.data(), 0, buffer.size());  // the seed does not linger in the agent
  if (rc != 0) Failed("RNDADDENTROPY");
  // Crediting alone does not rekey a CRNG that is already seeded (the kernel
  // reseeds on its own schedule): VMs restored from one memory snapshot would
  // keep drawing the same stream until then (and generate the same lazily
  // made boot_id). Reseed now from the pool that holds the host's bytes.
  // ENODATA: not seeded yet; its first seeding takes the bytes in anyway.
  if (::ioctl(random.get(), RNDRESEEDCRNG) != 0 && errno != ENODATA) Failed("RNDRESEEDCRNG");
}

}  // namespace

void ApplyIdentity(const pb::SetIdentityRequest& request, bool in_utility_vm,
                   const std::filesystem::path& machine_id_file) {
  if (!in_utility_vm)
    throw Error(ErrorCode::kFailedPrecondition, "SetIdentity: only for an agent in a utility VM");
  const auto& entropy = request.entropy();
  if (!entropy.empty() && (entropy.size() < kMinEntropy || entropy.size() > kMaxEntropy))
    Invalid("SetIdentity: entropy: " + std::to_string(entropy.size()) + " bytes, want 16..512");
  if (!request.hostname().empty() && !IsValidId(request.hostname()))
    Invalid("SetIdentity: hostname \"" + request.hostname() + "\": not a valid id");
  if (request.hostname().size() > 64) Invalid("SetIdentity: hostname: longer than 64 bytes");
  if (!request.machine_id().empty() && !IsMachineId(request.machine_id()))
    Invalid("SetIdentity: machine_id: want 32 lowercase hex digits, not all zero");

  if (request.realtime_ns() < 0) Invalid("SetIdentity: realtime_ns: negative");

  if (!entropy.empty()) AddEntropy(entropy);
  if (request.realtime_ns() > 0) {
    const timespec now{static_cast<time_t>(request.realtime_ns() / 1000000000),
                       static_cast<long>(request.realtime_ns() % 1000000000)};
    if (::clock_settime(CLOCK_REALTIME, &now) != 0) Failed("clock_settime");
  }
  if (!request.hostname().empty() && ::sethostname(request.hostname().data(), request.hostname().size()) != 0)
    Failed("sethostname");
  if (!request.machine_id().empty()) {
    std::ofstream out(machine_id_file, std::ios::trunc);
    out << request.machine_id() << "\n";
    if (!out.flush()) Failed("write " + machine_id_file.string());
  }
  spdlog::info("event=identity_set entropy_bytes={} hostname={} machine_id={}", entropy.size(),
               request.hostname().empty() ? "-" : request.hostname(), request.machine_id().empty() ? "-" : "set");
}

}  // namespace uvmshim::agent
