#include "guest-agent/identity.h"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "common/ids.h"
#include "common/unique_fd.h"

namespace uvmshim::agent {
namespace {

constexpr std::size_t kMinEntropy = 16;
constexpr std::size_t kMaxEntropy = 512;

grpc::Status Invalid(const std::string& message) { return {grpc::StatusCode::INVALID_ARGUMENT, message}; }
grpc::Status Failed(const std::string& what) {
  return {grpc::StatusCode::INTERNAL, what + ": " + std::strerror(errno)};
}

bool IsMachineId(const std::string& text) {
  if (text.size() != 32) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return text != std::string(32, '0');
}

// RNDADDENTROPY both mixes the bytes in and credits them, so getrandom()
// in the guest is seeded from the host even right after a snapshot restore.
grpc::Status AddEntropy(const std::string& bytes) {
  UniqueFd random(::open("/dev/urandom", O_WRONLY | O_CLOEXEC));
  if (!random) return Failed("open /dev/urandom");
  std::vector<char> buffer(sizeof(rand_pool_info) + bytes.size());
  auto* info = reinterpret_cast<rand_pool_info*>(buffer.data());
  info->entropy_count = static_cast<int>(bytes.size() * 8);
  info->buf_size = static_cast<int>(bytes.size());
  std::memcpy(info->buf, bytes.data(), bytes.size());
  const int rc = ::ioctl(random.get(), RNDADDENTROPY, info);
  std::memset(buffer.data(), 0, buffer.size());  // the seed does not linger in the agent
  if (rc != 0) return Failed("RNDADDENTROPY");
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ApplyIdentity(const pb::SetIdentityRequest& request, bool in_utility_vm,
                           const std::filesystem::path& machine_id_file) {
  if (!in_utility_vm)
    return {grpc::StatusCode::FAILED_PRECONDITION, "SetIdentity: only for an agent in a utility VM"};
  const auto& entropy = request.entropy();
  if (!entropy.empty() && (entropy.size() < kMinEntropy || entropy.size() > kMaxEntropy))
    return Invalid("SetIdentity: entropy: " + std::to_string(entropy.size()) + " bytes, want 16..512");
  if (!request.hostname().empty() && !IsValidId(request.hostname()))
    return Invalid("SetIdentity: hostname \"" + request.hostname() + "\": not a valid id");
  if (request.hostname().size() > 64) return Invalid("SetIdentity: hostname: longer than 64 bytes");
  if (!request.machine_id().empty() && !IsMachineId(request.machine_id()))
    return Invalid("SetIdentity: machine_id: want 32 lowercase hex digits, not all zero");

  if (!entropy.empty())
    if (auto status = AddEntropy(entropy); !status.ok()) return status;
  if (!request.hostname().empty() && ::sethostname(request.hostname().data(), request.hostname().size()) != 0)
    return Failed("sethostname");
  if (!request.machine_id().empty()) {
    std::ofstream out(machine_id_file, std::ios::trunc);
    out << request.machine_id() << "\n";
    if (!out.flush()) return Failed("write " + machine_id_file.string());
  }
  spdlog::info("event=identity_set entropy_bytes={} hostname={} machine_id={}", entropy.size(),
               request.hostname().empty() ? "-" : request.hostname(), request.machine_id().empty() ? "-" : "set");
  return grpc::Status::OK;
}

}  // namespace uvmshim::agent
