// Session against SSH servers that misbehave on purpose (issue 16 items 1-3): a server that
// floods lines before its version line, one that accepts and never speaks, a command that never
// finishes and one that floods output. Each must end in a clear SshError, with bounded memory,
// instead of hanging the verb.
#include "gm/error.h"
#include "ssh/session.h"
#include "support/hostile_server.h"
#include "support/sshd.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>

namespace gm::ssh {
namespace {

using gm::testing::HostileServer;
using gm::testing::SshdFixture;
using namespace std::chrono_literals;

/// Connects to a hostile server in the background and returns the error it ended with. A
/// connect still running after `limit` fails the test; stopping the server then ends it, so a
/// regression fails instead of hanging the suite.
std::optional<SshError> connect_error(std::unique_ptr<HostileServer> server,
                                      std::chrono::milliseconds handshake_timeout,
                                      std::chrono::seconds limit) {
  ConnectOptions options;
  options.target.host = "127.0.0.1";
  options.target.port = server->port();
  options.target.user = "nobody";
  options.host_key_policy = HostKeyPolicy::trust_on_first_use;
  options.handshake_timeout = handshake_timeout;
  options.subject = "machine 'hostile'";
  auto attempt = std::async(std::launch::async, [options]() -> std::optional<SshError> {
    try {
      Session::connect(options);
    } catch (const SshError& e) {
      return e;
    }
    return std::nullopt;
  });
  if (attempt.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << "connect still running after " << limit.count() << " s";
  }
  server.reset();
  return attempt.get();
}

TEST(SshHostileServer, EndlessPreBannerLinesFailTheHandshakeAfter64KiB) {
  std::optional<SshError> e =
      connect_error(std::make_unique<HostileServer>(HostileServer::endless_pre_banner()), 60s, 30s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->stage(), SshError::Stage::handshake);
  EXPECT_NE(std::string(e->what()).find("more than 64 KiB without an SSH version line"),
            std::string::npos)
      << e->what();
  EXPECT_NE(std::string(e->what()).find("machine 'hostile'"), std::string::npos);
  EXPECT_FALSE(e->hint().empty());
}

TEST(SshHostileServer, ServerThatNeverSpeaksFailsAtTheHandshakeTimeout) {
  std::optional<SshError> e =
      connect_error(std::make_unique<HostileServer>(HostileServer::silent()), 1s, 30s);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->stage(), SshError::Stage::handshake);
  EXPECT_NE(std::string(e->what()).find("no SSH version line within 1 s"), std::string::npos)
      << e->what();
}

class SshHostileCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { s_sshd = new SshdFixture(); }
  static void TearDownTestSuite() {
    delete s_sshd;
    s_sshd = nullptr;
  }
  static std::unique_ptr<Session> connect(std::chrono::milliseconds command_timeout) {
    ConnectOptions options;
    options.target = s_sshd->target();
    options.subject = "machine 'test'";
    options.command_timeout = command_timeout;
    return Session::connect(options);
  }
  static SshdFixture* s_sshd;
};
SshdFixture* SshHostileCommand::s_sshd = nullptr;

TEST_F(SshHostileCommand, CommandThatNeverAnswersFailsAtTheCommandTimeout) {
  std::unique_ptr<Session> session = connect(1s);
  try {
    session->run("sleep 8");
    ADD_FAILURE() << "a command longer than the timeout returned";
  } catch (const SshError& e) {
    EXPECT_EQ(e.stage(), SshError::Stage::exec);
    EXPECT_NE(std::string(e.what()).find("did not finish within 1 s"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("sleep 8"), std::string::npos);
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST_F(SshHostileCommand, FloodingOutputStopsAtTheCollectionLimit) {
  std::unique_ptr<Session> session = connect(std::chrono::minutes(5));
  try {
    // 100 MB: far past the limit, finite so that a regression ends.
    session->run("head -c 100000000 /dev/zero");
    ADD_FAILURE() << "100 MB of output were collected";
  } catch (const SshError& e) {
    EXPECT_EQ(e.stage(), SshError::Stage::exec);
    EXPECT_NE(std::string(e.what()).find("more than 8 MiB to stdout"), std::string::npos)
        << e.what();
  }
  // The session stays usable for the next command.
  EXPECT_EQ(session->run("echo ok").out, "ok\n");
}

}  // namespace
}  // namespace gm::ssh
