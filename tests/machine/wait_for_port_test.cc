// machine::wait_for_port: create's wait for a machine's SSH port, against a real sshd that starts
// while it waits, and a port where nothing ever listens.
#include "machine/connect.h"
#include "machine/machine_host.h"
#include "support/process.h"
#include "support/sshd.h"
#include "util/net.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

namespace gm::testing {
namespace {

using namespace std::chrono_literals;

TEST(WaitForPort, ReturnsOnceSshdStartsListening) {
  TempDir home("gm-wait-port");
  store::Store store(home.path());
  machine::MachineHost host(store);
  MachineRecord record;
  record.name = "m";
  record.ssh.host = "127.0.0.1";
  record.ssh.port = free_port();
  std::unique_ptr<SshdFixture> sshd;
  std::thread later([&] {
    std::this_thread::sleep_for(300ms);
    sshd = std::make_unique<SshdFixture>(SshdOptions{.port = record.ssh.port});
  });
  machine::wait_for_port(record, host, std::chrono::steady_clock::now() + 60s);
  later.join();
  EXPECT_TRUE(util::tcp_reachable({{record.ssh.host, record.ssh.port}}, 5s).front());
}

TEST(WaitForPort, GivesUpAtTheDeadlineWhenNothingListens) {
  TempDir home("gm-wait-port");
  store::Store store(home.path());
  machine::MachineHost host(store);
  MachineRecord record;
  record.name = "m";
  record.ssh.host = "127.0.0.1";
  record.ssh.port = free_port();
  machine::wait_for_port(record, host, std::chrono::steady_clock::now() + 300ms);
  EXPECT_FALSE(util::tcp_reachable({{record.ssh.host, record.ssh.port}}, 1s).front());
}

}  // namespace
}  // namespace gm::testing
