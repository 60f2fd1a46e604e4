#include "ssh/session.h"
#include "gm/error.h"
#include "ssh/keys.h"
#include "support/process.h"
#include "support/scoped_env.h"
#include "support/sshd.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <thread>

namespace gm::ssh {
namespace {

using gm::testing::SshdFixture;
using gm::testing::TempDir;

ConnectOptions options_for(const SshdFixture& sshd) {
  ConnectOptions options;
  options.target = sshd.target();
  options.subject = "machine 'test'";
  return options;
}

template <typename F>
SshError expect_ssh_error(F&& f) {
  try {
    f();
  } catch (const SshError& e) {
    return e;
  }
  ADD_FAILURE() << "no SshError thrown";
  return SshError(SshError::Stage::connect, "", "");
}

class SshSession : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { s_sshd = new SshdFixture(); }
  static void TearDownTestSuite() {
    delete s_sshd;
    s_sshd = nullptr;
  }
  static SshdFixture* s_sshd;
};
SshdFixture* SshSession::s_sshd = nullptr;

TEST_F(SshSession, ExecSeparatesStreamsAndPropagatesStatus) {
  std::unique_ptr<Session> session = Session::connect(options_for(*s_sshd));
  EXPECT_EQ(session->host_key(), s_sshd->host_public_key());
  ExecResult r = session->run("echo out; echo err >&2; exit 7");
  EXPECT_EQ(r.exit_status, 7);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  // The session is reusable for further commands.
  EXPECT_EQ(session->run("true").exit_status, 0);
  EXPECT_EQ(session->run("false").exit_status, 1);
}

TEST_F(SshSession, StdinPassesThrough) {
  std::unique_ptr<Session> session = Session::connect(options_for(*s_sshd));
  ExecResult r = session->run("tr a-z A-Z", "hello\nworld\n");
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.out, "HELLO\nWORLD\n");

  // A large stdin echoed back on stdout and stderr at once: neither direction may starve.
  std::string big(5 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + (i * 7919) % 26);
  }
  r = session->run("tee /dev/stderr", big);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_TRUE(r.out == big) << "stdout size " << r.out.size();
  EXPECT_TRUE(r.err == big) << "stderr size " << r.err.size();

  // A command that ignores its input must not hang the writer.
  r = session->run("exit 3", big);
  EXPECT_EQ(r.exit_status, 3);
}

TEST_F(SshSession, LargeStdoutArrivesIntact) {
  std::unique_ptr<Session> session = Session::connect(options_for(*s_sshd));
  std::string out;
  std::size_t chunks = 0;
  int status = session->exec(
      "head -c 20971520 /dev/zero | tr '\\0' x; echo -n end >&2",
      [&](std::string_view c) {
        out.append(c);
        ++chunks;
      },
      [](std::string_view) {});
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out.size(), 20u * 1024 * 1024);
  EXPECT_EQ(out.find_first_not_of('x'), std::string::npos);
  EXPECT_GT(chunks, 1u);
}

TEST_F(SshSession, SignalBecomes128PlusN) {
  std::unique_ptr<Session> session = Session::connect(options_for(*s_sshd));
  EXPECT_EQ(session->run("kill -TERM $$").exit_status, 128 + 15);
  EXPECT_EQ(session->run("kill -KILL $$").exit_status, 128 + 9);
}

TEST_F(SshSession, UploadWritesContentAndMode) {
  TempDir dir;
  std::unique_ptr<Session> session = Session::connect(options_for(*s_sshd));
  std::string path = (dir / "script.sh").string();
  session->upload(path, "#!/bin/sh\necho uploaded\n", 0755);
  EXPECT_EQ(session->run(path).out, "uploaded\n");
  session->upload(path, "short\n", 0600);  // replaced, truncated, mode changed
  EXPECT_EQ(gm::testing::read_text(path), "short\n");
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(SshSession, PinnedHostKeyMismatchShowsBothFingerprints) {
  ConnectOptions options = options_for(*s_sshd);
  KeyPair other = generate_ed25519("impostor");
  options.target.host_key = other.public_openssh;
  SshError e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.stage(), SshError::Stage::hostkey);
  std::string message = e.what();
  EXPECT_NE(message.find(fingerprint_sha256(s_sshd->host_public_key())), std::string::npos)
      << message;
  EXPECT_NE(message.find(fingerprint_sha256(other.public_openssh)), std::string::npos) << message;
  EXPECT_NE(e.hint().find("gpumachine rm"), std::string::npos) << e.hint();

  options.hostkey_hint = "custom hint";
  e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.hint(), "custom hint");
}

TEST_F(SshSession, TrustOnFirstUseChecksExpectedFingerprint) {
  ConnectOptions options = options_for(*s_sshd);
  options.target.host_key.clear();
  options.host_key_policy = HostKeyPolicy::trust_on_first_use;
  EXPECT_EQ(Session::connect(options)->host_key(), s_sshd->host_public_key());

  options.expected_fingerprint = fingerprint_sha256(s_sshd->host_public_key());
  EXPECT_EQ(Session::connect(options)->host_key(), s_sshd->host_public_key());

  options.expected_fingerprint = fingerprint_sha256(generate_ed25519("x").public_openssh);
  SshError e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.stage(), SshError::Stage::hostkey);
}

TEST_F(SshSession, PinnedWithoutKeyIsRefused) {
  ConnectOptions options = options_for(*s_sshd);
  options.target.host_key.clear();
  EXPECT_EQ(expect_ssh_error([&] { Session::connect(options); }).stage(), SshError::Stage::hostkey);
}

TEST_F(SshSession, WrongKeyIsAnAuthErrorNamingTheKeyFile) {
  TempDir dir;
  std::filesystem::path key = dir / "stranger";
  write_key_pair(key, generate_ed25519("stranger"));
  ConnectOptions options = options_for(*s_sshd);
  options.target.key_path = key.string();
  SshError e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.stage(), SshError::Stage::auth);
  EXPECT_NE(std::string(e.what()).find(key.string()), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find(s_sshd->user()), std::string::npos) << e.what();
}

TEST_F(SshSession, MissingKeyFileIsAKeyfileError) {
  ConnectOptions options = options_for(*s_sshd);
  options.target.key_path = "/nonexistent/id_ed25519";
  SshError e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.stage(), SshError::Stage::keyfile);
  EXPECT_NE(std::string(e.what()).find("/nonexistent/id_ed25519"), std::string::npos);
}

TEST_F(SshSession, RsaKeyGetsTheLibssh2Explanation) {
  TempDir dir;
  std::filesystem::path key = dir / "id_rsa";
  gm::testing::CaptureResult made = gm::testing::run_capture(
      {"ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", key.string()});
  ASSERT_EQ(made.status, 0) << made.err;
  std::filesystem::remove(key.string() + ".pub");  // detected from the private key alone
  ConnectOptions options = options_for(*s_sshd);
  options.target.key_path = key.string();
  SshError e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.stage(), SshError::Stage::auth);
  std::string message = std::string(e.what()) + "\n" + e.hint();
  EXPECT_NE(message.find("libssh2 1.10"), std::string::npos) << message;
  EXPECT_NE(message.find("SHA-1"), std::string::npos) << message;
  EXPECT_NE(message.find("ed25519"), std::string::npos) << message;
  EXPECT_NE(message.find(key.string()), std::string::npos) << message;

  // PEM ("BEGIN RSA PRIVATE KEY") too.
  gm::testing::CaptureResult pem =
      gm::testing::run_capture({"ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N",
                                "", "-f", (dir / "pem").string()});
  ASSERT_EQ(pem.status, 0) << pem.err;
  options.target.key_path = (dir / "pem").string();
  EXPECT_NE(
      std::string(expect_ssh_error([&] { Session::connect(options); }).what()).find("libssh2 1.10"),
      std::string::npos);
}

TEST_F(SshSession, GeneratedKeyAuthenticates) {
  TempDir dir;
  KeyPair pair = generate_ed25519("gm");
  std::filesystem::path key = dir / "id_ed25519";
  write_key_pair(key, pair);
  gm::testing::SshdOptions sshd_options;
  sshd_options.authorized_keys = {pair.public_openssh};
  SshdFixture sshd(sshd_options);
  ConnectOptions options;
  options.target = sshd.target();
  options.target.key_path = key.string();
  std::filesystem::remove(key.string() + ".pub");  // libssh2 derives the public half
  EXPECT_EQ(Session::connect(options)->run("echo ok").out, "ok\n");
}

TEST_F(SshSession, KeyOptionsSetTheLoginEnvironment) {
  gm::testing::SshdOptions sshd_options;
  sshd_options.key_options = "environment=\"GM_STUB_MARK=stubbed\"";
  SshdFixture sshd(sshd_options);
  ConnectOptions options;
  options.target = sshd.target();
  EXPECT_EQ(Session::connect(options)->run("echo $GM_STUB_MARK").out, "stubbed\n");
}

TEST(SshConnect, NothingListeningFailsWithConnectError) {
  ConnectOptions options;
  options.target.host = "127.0.0.1";
  options.target.port = gm::testing::free_port();
  options.target.user = "root";
  options.target.key_path = "/nonexistent";
  options.target.host_key = generate_ed25519("x").public_openssh;
  options.connect_timeout = std::chrono::milliseconds(500);
  options.retry_for = std::chrono::milliseconds(1200);
  SshError e = expect_ssh_error([&] { Session::connect(options); });
  EXPECT_EQ(e.stage(), SshError::Stage::connect);
  EXPECT_NE(std::string(e.what()).find(std::to_string(options.target.port)), std::string::npos);
}

TEST(SshConnect, RetriesUntilTheServerComesUp) {
  int port = gm::testing::free_port();
  gm::testing::SshdOptions sshd_options;
  sshd_options.port = port;
  SshdFixture sshd(sshd_options);
  sshd.stop();
  ConnectOptions options;
  options.target = sshd.target();
  options.connect_timeout = std::chrono::milliseconds(500);
  options.retry_for = std::chrono::milliseconds(30000);
  std::thread starter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    sshd.start();
  });
  std::unique_ptr<Session> session;
  EXPECT_NO_THROW(session = Session::connect(options));
  starter.join();
  ASSERT_TRUE(session);
  EXPECT_EQ(session->run("echo up").out, "up\n");
}

TEST(SshConnect, RestartKeepsHostKeyAndPort) {
  SshdFixture sshd;
  ConnectOptions options;
  options.target = sshd.target();
  EXPECT_EQ(Session::connect(options)->run("true").exit_status, 0);
  sshd.restart();
  EXPECT_EQ(Session::connect(options)->run("true").exit_status, 0);
}

}  // namespace
}  // namespace gm::ssh

namespace gm::ssh {
namespace {

using gm::test::EnvVar;

TEST(SshAgent, AuthenticatesThroughTheAgentBeforeTheKeyFile) {
  SshdFixture sshd;
  TempDir dir;
  std::string socket = (dir / "agent.sock").string();
  gm::testing::Process agent({"ssh-agent", "-D", "-a", socket});
  for (int i = 0; i < 500 && !std::filesystem::exists(socket); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(std::filesystem::exists(socket));
  gm::testing::SpawnOptions env;
  env.env["SSH_AUTH_SOCK"] = socket;
  gm::testing::CaptureResult added =
      gm::testing::run_capture({"ssh-add", sshd.client_key_path().string()}, {}, env);
  ASSERT_EQ(added.status, 0) << added.err;

  EnvVar auth_sock("SSH_AUTH_SOCK", socket);
  ConnectOptions options;
  options.target = sshd.target();
  options.target.key_path = (dir / "not-needed").string();  // the agent suffices
  options.use_agent = true;
  EXPECT_EQ(Session::connect(options)->run("echo agent").out, "agent\n");

  // Without the agent, the missing key file is reported.
  options.use_agent = false;
  EXPECT_EQ(expect_ssh_error([&] { Session::connect(options); }).stage(), SshError::Stage::keyfile);
}

}  // namespace
}  // namespace gm::ssh
