#include "util/net.h"

#include "util/fd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <optional>

namespace gm::util {

namespace {

/// Connections in flight to one host:port. sshd's queue of pending connections holds 128 (its
/// listen backlog); more at once and the kernel drops SYNs, which wait out its 1 s retry.
constexpr std::size_t k_per_endpoint = 64;
/// Connections in flight overall (file descriptors).
constexpr std::size_t k_overall = 256;
/// How long a connected socket keeps its slot when the server sends nothing (a stopped sshd).
constexpr auto k_greeting_wait = std::chrono::seconds(1);

/// Starts a non-blocking connect; returns the socket or -1 when it failed outright.
int start_connect(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

/// One connection in flight: connecting, then (once accepted) waiting for the server's first
/// byte. The slot is held until then because a connection the client already counts as made
/// still sits in the server's queue until the server takes it, and only its greeting says so.
struct Probe {
  Fd fd;
  std::size_t endpoint;  ///< index into the caller's endpoints
  std::size_t group;     ///< index of its host:port
  std::optional<std::chrono::steady_clock::time_point> connected_at;
};

}  // namespace

std::vector<bool> tcp_reachable(const std::vector<std::pair<std::string, int>>& endpoints,
                                std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  std::vector<bool> up(endpoints.size(), false);
  // Endpoints still to start, by host:port, started round robin.
  std::map<std::pair<std::string, int>, std::size_t> group_of;
  std::vector<std::deque<std::size_t>> waiting;
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    auto [it, added] = group_of.try_emplace(endpoints[i], waiting.size());
    if (added) {
      waiting.emplace_back();
    }
    waiting[it->second].push_back(i);
  }
  std::vector<std::size_t> in_flight(waiting.size(), 0);
  std::size_t undecided = endpoints.size();
  std::vector<Probe> probes;
  std::vector<pollfd> fds;
  while (undecided > 0) {
    for (bool started = true; started && probes.size() < k_overall;) {
      started = false;
      for (std::size_t g = 0; g < waiting.size() && probes.size() < k_overall; ++g) {
        if (waiting[g].empty() || in_flight[g] >= k_per_endpoint) {
          continue;
        }
        std::size_t i = waiting[g].front();
        waiting[g].pop_front();
        started = true;
        Fd fd(start_connect(endpoints[i].first, endpoints[i].second));
        if (fd.get() < 0) {
          --undecided;
          continue;
        }
        ++in_flight[g];
        probes.push_back({std::move(fd), i, g, std::nullopt});
      }
    }
    auto now = Clock::now();
    if (now >= deadline) {
      break;
    }
    auto wake = deadline;
    for (const Probe& p : probes) {
      if (p.connected_at) {
        wake = std::min(wake, *p.connected_at + k_greeting_wait);
      }
    }
    fds.clear();
    for (const Probe& p : probes) {
      fds.push_back({p.fd.get(), static_cast<short>(p.connected_at ? POLLIN : POLLOUT), 0});
    }
    auto wait =
        std::chrono::ceil<std::chrono::milliseconds>(std::max(wake - now, Clock::duration{}));
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) < 0 && errno != EINTR) {
      break;
    }
    now = Clock::now();
    std::size_t kept = 0;
    for (std::size_t k = 0; k < probes.size(); ++k) {
      Probe& p = probes[k];
      bool done = false;
      if (!p.connected_at && fds[k].revents != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(p.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        up[p.endpoint] = err == 0;
        --undecided;
        done = err != 0;
        p.connected_at = now;
      } else if (p.connected_at) {
        done = fds[k].revents != 0 || now >= *p.connected_at + k_greeting_wait;
      }
      if (done) {
        --in_flight[p.group];
      } else {
        probes[kept++] = std::move(p);
      }
    }
    probes.erase(probes.begin() + static_cast<long>(kept), probes.end());
  }
  return up;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") {
    return true;
  }
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

}  // namespace gm::util
