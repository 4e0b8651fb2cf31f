#include "netns/pod_network_attachment.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "netns/netns_reader.h"
#include "netns/tap_redirect.h"

namespace uvmshim::host::netns {

namespace {

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

bool IsHostNetns(const std::string& path) {
  return SameFile(path, "/proc/1/ns/net") || SameFile(path, "/proc/self/ns/net");
}

std::unique_ptr<PodNetworkAttachment> PodNetworkAttachment::Attach(const std::string& path, const std::string& field) {
  const std::string where = fmt::format("{} \"{}\"", field, path);
  if (IsHostNetns(path))
    throw std::invalid_argument(where + ": the host's network namespace cannot be given to a utility VM");
  const int netns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (netns < 0) throw std::invalid_argument(fmt::format("{}: {}", where, std::strerror(errno)));
  std::unique_ptr<PodNetworkAttachment> self(new PodNetworkAttachment());
  self->path_ = path;
  try {
    netlink::RunInNetworkNamespace(netns, [&] {
      self->socket_ = netlink::Socket();
      PodNetnsContents contents = ReadPodNetns(self->socket_);
      self->network_ = contents.network;
      for (std::size_t i = 0; i < contents.links.size(); ++i) {
        const auto& pod_link = contents.links[i];
        Link link{pod_link.index, pod_link.name, pod_link.mac, pod_link.mtu, -1, false};
        const std::string tap = fmt::format("tap{}_uvm", i);
        // Our tap is there already: another sandbox holds this namespace.
        if (::if_nametoindex(tap.c_str()) > 0)
          throw std::invalid_argument(fmt::format("{} exists: the namespace is already attached to a utility VM", tap));
        link.tap_fd = CreateTap(self->socket_, tap, link.mtu);
        self->links_.push_back(link);  // the destructor closes the tap from here on
        const int tap_index = static_cast<int>(::if_nametoindex(tap.c_str()));
        if (tap_index <= 0) throw std::runtime_error(fmt::format("tap {}: {}", tap, std::strerror(errno)));
        RedirectBothWays(self->socket_, link.veth_index, tap_index, fmt::format("interface {}", link.name));
        self->links_.back().filtered = true;
      }
    });
  } catch (const netlink::NetlinkError& e) {
    ::close(netns);
    if (e.error() == EEXIST)
      throw std::invalid_argument(fmt::format("{}: {} (already attached to a utility VM?)", where, e.what()));
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  } catch (const std::invalid_argument& e) {
    ::close(netns);
    throw std::invalid_argument(fmt::format("{}: {}", where, e.what()));
  } catch (const std::exception& e) {
    ::close(netns);
    throw std::runtime_error(fmt::format("{}: {}", where, e.what()));
  }
  ::close(netns);
  for (const auto& link : self->links_)
    spdlog::info("event=pod_link_attached netns={} interface={} mac={} mtu={}", path, link.name, link.mac, link.mtu);
  return self;
}

PodNetworkAttachment::~PodNetworkAttachment() {
  CloseTapFds();
  RemoveFilters();
}

void PodNetworkAttachment::RemoveFilters() {
  // Taps closed by everyone are gone; the veth's filters would drop its
  // frames towards a missing tap until the namespace ends. The socket lives
  // in the pod's namespace, so this works even after its path was deleted.
  for (auto& link : links_) {
    if (!link.filtered) continue;
    try {
      RemoveIngress(socket_, link.veth_index);
    } catch (const std::exception& e) {
      spdlog::warn("event=pod_link_filters_left netns={} interface={} error=\"{}\"", path_, link.name, e.what());
    }
    link.filtered = false;
  }
}

std::vector<uvm::VmNic> PodNetworkAttachment::nics() const {
  std::vector<uvm::VmNic> nics;
  for (const auto& link : links_) nics.push_back({link.mac, link.mtu, link.tap_fd});
  return nics;
}

void PodNetworkAttachment::CloseTapFds() {
  for (auto& link : links_) {
    if (link.tap_fd >= 0) ::close(link.tap_fd);
    link.tap_fd = -1;
  }
}

}  // namespace uvmshim::host::netns
