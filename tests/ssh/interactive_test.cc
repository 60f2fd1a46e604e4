#include "ssh/interactive.h"
#include "ssh/keys.h"
#include "ssh/known_hosts.h"
#include "support/process.h"
#include "support/sshd.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

namespace gm::ssh {
namespace {

using gm::testing::read_text;
using gm::testing::SshdFixture;
using gm::testing::TempDir;
using gm::testing::write_text;

class SshInteractive : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(m_dir / "known_hosts",
               known_hosts_line(m_sshd.host(), m_sshd.port(), m_sshd.host_public_key()) + "\n");
  }
  SshdFixture m_sshd;
  TempDir m_dir;
};

TEST_F(SshInteractive, OpenSshArgvPinsTheHostKey) {
  SshTarget target = m_sshd.target();
  std::vector<std::string> argv =
      openssh_argv("/usr/bin/ssh", target, "/a b/known_hosts", {"-v"}, "uptime", true);
  std::vector<std::string> expected = {"/usr/bin/ssh",
                                       "-i",
                                       target.key_path,
                                       "-p",
                                       std::to_string(target.port),
                                       "-o",
                                       "IdentitiesOnly=yes",
                                       "-o",
                                       "UserKnownHostsFile=\"/a b/known_hosts\"",
                                       "-o",
                                       "StrictHostKeyChecking=yes",
                                       "-o",
                                       "GlobalKnownHostsFile=/dev/null",
                                       "-t",
                                       "-v",
                                       target.user + "@" + target.host,
                                       "uptime"};
  EXPECT_EQ(argv, expected);
}

TEST_F(SshInteractive, OpenSshClientRunsCommandAndReturnsStatus) {
  EXPECT_EQ(interactive_session(m_sshd.target(), m_dir / "known_hosts",
                                {"-o", "LogLevel=ERROR", "-n"}, "exit 3"),
            3);
}

TEST_F(SshInteractive, OpenSshClientRefusesAnUnpinnedHostKey) {
  write_text(
      m_dir / "other",
      known_hosts_line(m_sshd.host(), m_sshd.port(), generate_ed25519("x").public_openssh) + "\n");
  // ssh's own exit status for a failed host key check.
  EXPECT_EQ(interactive_session(m_sshd.target(), m_dir / "other", {"-o", "LogLevel=QUIET", "-n"},
                                "exit 0"),
            255);
}

TEST_F(SshInteractive, NativeSessionRunsCommandInAPty) {
  SshTarget target = m_sshd.target();
  target.host_key.clear();  // taken from the known_hosts file
  int in_pipe[2];
  ASSERT_EQ(pipe(in_pipe), 0);
  ASSERT_EQ(::write(in_pipe[1], "typed\n", 6), 6);
  ::close(in_pipe[1]);
  int out = ::open((m_dir / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(out, 0);
  int status =
      native_session(target, m_dir / "known_hosts",
                     "read line; test -t 0 && echo tty:$line; exit 4", in_pipe[0], out, out);
  ::close(in_pipe[0]);
  ::close(out);
  EXPECT_EQ(status, 4);
  EXPECT_NE(read_text(m_dir / "out").find("tty:typed"), std::string::npos)
      << read_text(m_dir / "out");
}

}  // namespace
}  // namespace gm::ssh
