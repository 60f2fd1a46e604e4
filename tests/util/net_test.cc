// util::tcp_reachable against a real sshd on loopback.
#include "util/net.h"

#include "support/sshd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

namespace gm::testing {
namespace {

using namespace std::chrono_literals;

// 200 machines behind one address (a bastion, a NAT, a test box): opened all at once, the
// connections overflow sshd's queue of pending connections (128) and the dropped ones wait out
// the kernel's 1 s SYN retry, past this 0.9 s deadline. Capped per host:port, all answer.
TEST(TcpReachable, TwoHundredMachinesBehindOneSshdAllAnswerWithoutOverflowingItsQueue) {
  SshdFixture sshd;
  std::vector<std::pair<std::string, int>> endpoints(200, {"127.0.0.1", sshd.port()});
  std::vector<bool> up = util::tcp_reachable(endpoints, 900ms);
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
