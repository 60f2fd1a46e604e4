// Credentials never reach any output: command lines carrying Docker Machine's credential flags,
// and runs with AWS secrets in the environment (failing and succeeding, with -v), searched in
// stdout, stderr and every file of the gpumachine home and the user's home.
#include "cli/cli_runner.h"
#include "drivers/ec2/ec2_test_util.h"

#include <gtest/gtest.h>

namespace gm::testing {
namespace {

/// Files under \a dir whose content contains \a needle.
std::vector<std::string> files_containing(const std::filesystem::path& dir,
                                          const std::string& needle) {
  std::vector<std::string> found;
  if (!std::filesystem::exists(dir)) {
    return found;
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && read_text(entry.path()).find(needle) != std::string::npos) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

void expect_not_in(const CaptureResult& r, const std::string& secret) {
  EXPECT_EQ(r.out.find(secret), std::string::npos) << ec2::describe(r);
  EXPECT_EQ(r.err.find(secret), std::string::npos) << ec2::describe(r);
}

TEST(CliSecrets, CredentialFlagsAreRefusedWithoutEchoingTheValue) {
  CliRunner cli;
  const std::string secret = "wJalrXUtnFEMI-K7MDENG-onTheCommandLine";
  const std::vector<std::vector<std::string>> command_lines = {
      {"create", "--driver", "amazonec2", "m1", "--amazonec2-access-key", "AKIAEXAMPLE",
       "--amazonec2-secret-key", secret},
      {"create", "m1", "--amazonec2-secret-key=" + secret},
      {"-v", "create", "m1", "--amazonec2-session-token", secret, "--amazonec2-region",
       "eu-west-1"},
      {"ls", "--digitalocean-access-token", secret},
  };
  for (const std::vector<std::string>& args : command_lines) {
    CaptureResult r = cli.run(args);
    EXPECT_EQ(r.status, 2) << ec2::describe(r);
    expect_not_in(r, secret);
    EXPECT_NE(r.err.find("credentials are not taken on the command line"), std::string::npos)
        << ec2::describe(r);
    EXPECT_NE(r.err.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << ec2::describe(r);
  }
  // The same key in a machine file is an unknown key; the error names the key, not its value.
  write_text(cli.dir() / "m.yaml", "amazonec2-secret-key: " + secret + "\n");
  CaptureResult from_file = cli.run({"create", "-f", (cli.dir() / "m.yaml").string(), "m1"});
  EXPECT_EQ(from_file.status, 2) << ec2::describe(from_file);
  expect_not_in(from_file, secret);
  std::filesystem::remove(cli.dir() / "m.yaml");
  EXPECT_TRUE(files_containing(cli.dir().path(), secret).empty());
  // A remote command's own options after "--" are the user's business, not refused.
  CaptureResult r = cli.run({"ssh", "nosuch", "--", "mysql", "--password", "x"});
  EXPECT_EQ(r.status, 3) << ec2::describe(r);
}

TEST(CliSecrets, AwsSecretsFromTheEnvironmentReachNoOutputAndNoFile) {
  Ec2EmulatorFixture emu;
  const std::string home = emu.cli_env().at("HOME");
  // A wrong secret and a session token: the endpoint refuses, -v shows every call.
  const std::string wrong = "Wrong/Secret+Key/0123456789abcdefghijkl";
  const std::string token = "IQoJb3JpZ2luX2VjEXAMPLE-session-token";
  std::vector<std::string> args = ec2::create_args("bad", {"--wait", "running"});
  args.insert(args.begin(), "-v");
  CaptureResult r = emu.gm(args, {{"AWS_SECRET_ACCESS_KEY", wrong}, {"AWS_SESSION_TOKEN", token}});
  EXPECT_NE(r.status, 0) << ec2::describe(r);
  expect_not_in(r, wrong);
  expect_not_in(r, token);

  // The right secret, a whole life with -v.
  std::vector<std::vector<std::string>> runs = {
      ec2::create_args("good", {"--wait", "ssh"}),
      {"inspect", "good"},
      {"ls"},
      {"ssh", "good", "--", "env"},
      {"rm", "good"},
  };
  for (std::vector<std::string>& run : runs) {
    run.insert(run.begin(), "-v");
    r = emu.gm(run);
    EXPECT_EQ(r.status, 0) << ec2::describe(r);
    expect_not_in(r, k_emulator_secret);
  }
  for (const std::string& secret : {wrong, token, std::string(k_emulator_secret)}) {
    EXPECT_TRUE(files_containing(emu.home(), secret).empty()) << secret;
    EXPECT_TRUE(files_containing(home, secret).empty()) << secret;
  }
}

}  // namespace
}  // namespace gm::testing
