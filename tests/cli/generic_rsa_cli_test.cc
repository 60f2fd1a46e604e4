// A generic host that accepts only an RSA key, with rsa-sha2 signatures only (OpenSSH 8.8+'s
// default), which Debian 12's libssh2 1.10 cannot make: create installs gpumachine's own
// ed25519 key there through one login with the OpenSSH client, after consent (--yes here, as no
// terminal asks), and every later connection uses that key.
#include "cli/cli_runner.h"
#include "support/sshd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace gm::testing {
namespace {

using ::testing::HasSubstr;

class GenericRsaCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run_capture({"ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C",
                           "user-rsa", "-f", (m_keys / "id_rsa").string()})
                  .status,
              0);
    SshdOptions options;
    options.authorized_keys = {read_text(m_keys / "id_rsa.pub")};
    // The login's ~ is a scratch directory whose ~/.ssh/authorized_keys is the fixture's file,
    // so what the login appends there is what sshd reads, and the real home is never touched.
    options.key_options = "environment=\"HOME=" + m_remote_home.path().string() + "\"";
    options.extra_config = {"PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256,ssh-ed25519"};
    m_sshd = std::make_unique<SshdFixture>(options);
    std::filesystem::create_directories(m_remote_home / ".ssh");
    std::filesystem::create_symlink(m_sshd->dir() / "authorized_keys",
                                    m_remote_home / ".ssh" / "authorized_keys");
  }

  std::vector<std::string> create_args(const std::string& name) const {
    return m_cli.generic_create_args(name, m_sshd->host(), m_sshd->port(), m_sshd->user(),
                                     (m_keys / "id_rsa").string());
  }

  std::string authorized_keys() const { return read_text(m_sshd->dir() / "authorized_keys"); }

  TempDir m_keys{"gm-rsa-keys"};
  TempDir m_remote_home{"gm-rsa-home"};
  std::unique_ptr<SshdFixture> m_sshd;
  CliRunner m_cli;
};

TEST_F(GenericRsaCli, WithoutConsentNothingIsChangedAndTheErrorShowsTheCommand) {
  std::string before = authorized_keys();
  CaptureResult r = m_cli.run(create_args("box"));
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cannot log in with the RSA key"));
  EXPECT_THAT(r.err, HasSubstr("pass --yes to let gpumachine run, once: 'ssh' '-i'"));
  EXPECT_THAT(r.err, HasSubstr("authorized_keys"));
  EXPECT_EQ(authorized_keys(), before);
  EXPECT_FALSE(std::filesystem::exists(m_cli.home() / "machines" / "box"));
}

TEST_F(GenericRsaCli, WithYesItInstallsItsOwnKeyAndUsesIt) {
  CaptureResult made = m_cli.run([&] {
    std::vector<std::string> args = create_args("box");
    args.insert(args.begin(), "--yes");
    return args;
  }());
  ASSERT_EQ(made.status, 0) << made.err;
  EXPECT_THAT(made.out, HasSubstr("created machine 'box'"));

  // Exactly one new line: the machine's own ed25519 public key.
  std::filesystem::path own_key = m_cli.home() / "machines" / "box" / "id_ed25519";
  std::string own_public = read_text(own_key.string() + ".pub");
  own_public = own_public.substr(0, own_public.find('\n'));
  std::string keys = authorized_keys();
  EXPECT_THAT(own_public, ::testing::StartsWith("ssh-ed25519 "));
  EXPECT_THAT(keys, HasSubstr("\n" + own_public + "\n"));
  EXPECT_EQ(std::count(keys.begin(), keys.end(), '\n'), 2) << keys;

  nlohmann::json record = m_cli.json({"inspect", "box"});
  EXPECT_EQ(record.at("ssh").at("key_path"), own_key.string()) << record.dump();

  CaptureResult ssh = m_cli.run({"ssh", "box", "--", "echo", "native"});
  EXPECT_EQ(ssh.status, 0) << ssh.err;
  EXPECT_EQ(ssh.out, "native\n");
}

}  // namespace
}  // namespace gm::testing
