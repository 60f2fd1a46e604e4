// util::tcp_reachable against a real sshd on loopback.
#include "util/net.h"

#include "support/sshd.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <stdexcept>
#include <thread>
#include <vector>

namespace gm::testing {
namespace {

using namespace std::chrono_literals;

// A loopback server that greets each connection 20 ms after taking it from its queue, and counts
// the most connections it held un-greeted at once (what a busy sshd holds pre-auth).
class SlowGreeter {
 public:
  SlowGreeter() {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (m_listen < 0 || ::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(m_listen, 512) != 0 ||
        ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("SlowGreeter: cannot listen on 127.0.0.1");
    }
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~SlowGreeter() {
    m_stop = true;
    m_thread.join();
    for (auto& [fd, at] : m_waiting) {
      ::close(fd);
    }
    for (int fd : m_greeted) {
      ::close(fd);
    }
    ::close(m_listen);
  }
  SlowGreeter(const SlowGreeter&) = delete;
  SlowGreeter& operator=(const SlowGreeter&) = delete;

  int port() const { return m_port; }
  std::size_t most_waiting() const { return m_most_waiting; }

 private:
  void serve() {
    using clock = std::chrono::steady_clock;
    while (!m_stop) {
      pollfd p{m_listen, POLLIN, 0};
      ::poll(&p, 1, 2);
      for (int fd; (fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
        m_waiting.emplace_back(fd, clock::now());
      }
      m_most_waiting = std::max<std::size_t>(m_most_waiting, m_waiting.size());
      while (!m_waiting.empty() && clock::now() - m_waiting.front().second >= 20ms) {
        int fd = m_waiting.front().first;
        m_waiting.pop_front();
        static constexpr char k_banner[] = "SSH-2.0-SlowGreeter\r\n";
        (void)!::write(fd, k_banner, sizeof k_banner - 1);
        m_greeted.push_back(fd);
      }
    }
  }

  int m_listen = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<std::size_t> m_most_waiting{0};
  std::deque<std::pair<int, std::chrono::steady_clock::time_point>> m_waiting;
  std::vector<int> m_greeted;
  std::thread m_thread;
};

// 200 machines behind one address (a bastion, a NAT, a test box): opened all at once, the
// connections overflow sshd's queue of pending connections (128) and the dropped ones wait out
// the kernel's 1 s SYN retry. At most 64 are in flight to one host:port, each until the server
// has greeted it, and all answer.
TEST(TcpReachable, AtMost64ConnectionsWaitOnOneServerAndAllTwoHundredAnswer) {
  SlowGreeter server;
  std::vector<std::pair<std::string, int>> endpoints(200, {"127.0.0.1", server.port()});
  std::vector<bool> up = util::tcp_reachable(endpoints, 30s);
  EXPECT_EQ(std::count(up.begin(), up.end(), true), 200);
  EXPECT_LE(server.most_waiting(), 64u);
  EXPECT_GT(server.most_waiting(), 1u) << "the checks ran in parallel";
}

// The same against a real sshd.
TEST(TcpReachable, TwoHundredMachinesBehindOneSshdAllAnswer) {
  SshdFixture sshd;
  std::vector<std::pair<std::string, int>> endpoints(200, {"127.0.0.1", sshd.port()});
  std::vector<bool> up = util::tcp_reachable(endpoints, 30s);
  EXPECT_EQ(std::count(up.begin(), up.end(), true), 200);
}

TEST(TcpReachable, ClosedPortsAreDownAndDoNotHoldUpTheOthers) {
  SshdFixture sshd;
  SshdFixture closed;
  int closed_port = closed.port();
  closed.stop();
  std::vector<std::pair<std::string, int>> endpoints;
  for (int i = 0; i < 150; ++i) {
    endpoints.emplace_back("127.0.0.1", i % 2 ? sshd.port() : closed_port);
  }
  std::vector<bool> up = util::tcp_reachable(endpoints, 5s);
  for (std::size_t i = 0; i < up.size(); ++i) {
    EXPECT_EQ(up[i], i % 2 == 1) << i;
  }
}

}  // namespace
}  // namespace gm::testing
