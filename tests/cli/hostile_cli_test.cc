// The real binary against hosts and endpoints that misbehave on purpose, and against signals
// (issue 16 items 1-4): memory stays bounded (the child's peak RSS, against the limit in the
// test's name), the first SIGTERM/SIGINT stops the verb and says how to go on, and a silent
// endpoint ends in a clear error.
#include "cli/cli_runner.h"
#include "cli/machine_env.h"
#include "drivers/ec2/ec2_test_util.h"
#include "support/hostile_server.h"
#include "support/sshd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <memory>

namespace gm::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// The bound in the tests' names, for gpumachine's own buffers. Under AddressSanitizer the same
// process also holds ASan's shadow memory and its 256 MiB quarantine of freed blocks, so the RSS
// limit is raised by that much there (the unbounded growth these tests catch is gigabytes).
#if defined(__SANITIZE_ADDRESS__)
constexpr long k_160_mib = (160 + 256 + 64) * 1024;
#else
constexpr long k_160_mib = 160 * 1024;
#endif

/// Waits (a safety net, not a timing assertion) for a background child to exit; a child still
/// running after `limit` fails the test and is stopped.
int exit_status_within(Process& process, std::chrono::seconds limit = 30s) {
  if (!eventually([&] { return !process.is_running(); }, limit)) {
    ADD_FAILURE() << "still running " << limit.count() << " s after the signal";
    process.stop();
  }
  return process.wait();
}

/// Waits until the file holds `text` (the child reached a known point).
bool file_shows(const std::filesystem::path& path, const std::string& text) {
  return eventually([&] {
    return std::filesystem::exists(path) && read_text(path).find(text) != std::string::npos;
  });
}

/// A failure that names the machine and the bound it hit, with a hint, in bounded memory.
void expect_bounded_failure(const CaptureResult& r, const std::string& machine,
                            const std::string& bound) {
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("machine '" + machine + "'"));
  EXPECT_THAT(r.err, HasSubstr(bound));
  EXPECT_THAT(r.err, HasSubstr("hint:"));
  EXPECT_LT(r.peak_rss_kib, k_160_mib);
}

/// The first SIGTERM ends `create machine` with 143, saying what stopped and how to go on.
void expect_create_stops_on_sigterm(Process& create, const std::filesystem::path& err_path,
                                    const std::string& machine) {
  ::kill(create.pid(), SIGTERM);
  EXPECT_EQ(exit_status_within(create), 143);
  std::string err = read_text(err_path);
  EXPECT_THAT(err, HasSubstr("stopping"));
  EXPECT_THAT(err, HasSubstr("machine '" + machine + "'"));
  EXPECT_THAT(err, HasSubstr("gpumachine create " + machine));
}

// ---- ssh NAME -- cmd ------------------------------------------------------------------------

TEST(HostileCli, SshStreamsEndlessStdinLikeOpenSsh) {
  CliMachine machine;
  SpawnOptions options;
  options.env = machine.env();
  // `timeout` signals its whole process group, so a regression (reading all of stdin first)
  // ends the pipeline instead of hanging the suite.
  CaptureResult r = run_capture({"timeout", "-k", "5", "60", "sh", "-c",
                                 "yes | exec \"$0\" ssh gpu1 -- head -1", GM_BINARY_PATH},
                                {}, options);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "y\n");
}

// Piped stdin larger than the memory bound arrives whole (issue 17 item 3: streamed, not held).
TEST(HostileCli, SshPipesThreeHundredMegabytesIntactUnder160MiB) {
  CliMachine machine;
  SpawnOptions options;
  options.env = machine.env();
  const std::string input = "yes 0123456789abcdef | head -c 300000000";
  CaptureResult local = run_capture({"sh", "-c", input + " | sha256sum"}, {}, options);
  CaptureResult r = run_capture(
      {"sh", "-c", input + " | exec \"$0\" ssh gpu1 -- sha256sum", GM_BINARY_PATH}, {}, options);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, local.out);
  EXPECT_LT(r.peak_rss_kib, k_160_mib);
}

void expect_ssh_command_ends_on(int signal_number, int expected_status) {
  CliMachine machine;
  TempDir dir("gm-ssh-signal");
  std::unique_ptr<Process> ssh = machine.gm_spawn(
      {"ssh", "gpu1", "--", "echo started; while :; do echo tick; sleep 1; done"}, dir, "ssh");
  ASSERT_TRUE(file_shows(dir / "ssh.out", "started")) << read_text(dir / "ssh.err");
  ::kill(ssh->pid(), signal_number);
  EXPECT_EQ(exit_status_within(*ssh), expected_status) << read_text(dir / "ssh.err");
}

TEST(HostileCli, FirstSigtermEndsSshCommandWith143) {
  expect_ssh_command_ends_on(SIGTERM, 143);
}

TEST(HostileCli, FirstSigintEndsSshCommandWith130) {
  expect_ssh_command_ends_on(SIGINT, 130);
}

// ---- generic create against a hostile host ---------------------------------------------------

TEST(HostileCli, GenericCreateAgainstAFloodingHostPeaksUnder160MiB) {
  SshdOptions options;
  // Every command the tool runs there answers with 400 MB.
  options.key_options = "command=\"head -c 400000000 /dev/zero\"";
  SshdFixture sshd(options);
  CliRunner cli;
  CaptureResult r = cli.run(cli.generic_create_args("flood", "127.0.0.1", sshd.port(), sshd.user(),
                                                    sshd.client_key_path().string()));
  expect_bounded_failure(r, "flood", "more than 8 MiB to stdout");
}

TEST(HostileCli, FirstSigtermDuringGenericHostFactsSaysHowToGoOn) {
  SshdOptions options;
  // Never finishes; dies of SIGPIPE once the client is gone.
  options.key_options = "command=\"while :; do echo . >&2; sleep 1; done\"";
  SshdFixture sshd(options);
  CliRunner cli;
  TempDir dir("gm-create-signal");
  std::vector<std::string> argv = {GM_BINARY_PATH};
  for (const std::string& a : cli.generic_create_args("hang", "127.0.0.1", sshd.port(), sshd.user(),
                                                      sshd.client_key_path().string())) {
    argv.push_back(a);
  }
  SpawnOptions spawn;
  spawn.env = cli.env();
  spawn.stderr_path = dir / "create.err";
  Process create(argv, spawn);
  ASSERT_TRUE(file_shows(dir / "create.err", "collecting host facts"));
  expect_create_stops_on_sigterm(create, dir / "create.err", "hang");
}

// ---- ec2 create against a hostile endpoint ---------------------------------------------------

/// Credentials and region as the EC2 emulator tests use them, every endpoint at 127.0.0.1:port.
std::map<std::string, std::string> ec2_env(CliRunner& cli, int port) {
  std::map<std::string, std::string> env = cli.env();
  env.insert({{"AWS_ACCESS_KEY_ID", "AKIDHOSTILETEST"},
              {"AWS_SECRET_ACCESS_KEY", "hostile-test-secret"},
              {"AWS_SESSION_TOKEN", ""},
              {"AWS_PROFILE", ""},
              {"AWS_REGION", "us-east-1"},
              {"AWS_DEFAULT_REGION", "us-east-1"},
              {"AWS_SHARED_CREDENTIALS_FILE", (cli.user_home() / "no-credentials").string()},
              {"AWS_CONFIG_FILE", (cli.user_home() / "no-config").string()},
              {"AWS_EC2_METADATA_DISABLED", "true"},
              {"GPUMACHINE_CALLER_IP", "127.0.0.1"}});
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  for (const char* name : {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SSM",
                           "AWS_ENDPOINT_URL_STS"}) {
    env[name] = url;
  }
  return env;
}

CaptureResult ec2_create(const std::string& name, int port, const std::string& attempts) {
  CliRunner cli;
  cli.env() = ec2_env(cli, port);
  cli.env()["AWS_MAX_ATTEMPTS"] = attempts;
  return cli.run({"create", "--driver", "ec2", name});
}

TEST(HostileCli, Ec2CreateAgainstAnEndlessResponseBodyPeaksUnder160MiB) {
  HostileServer endpoint(HostileServer::endless_http_body());
  CaptureResult r = ec2_create("huge", endpoint.port(), "3");
  expect_bounded_failure(r, "huge", "larger than 32 MiB");
}

TEST(HostileCli, Ec2CreateAgainstASilentEndpointFailsWithAClearError) {
  HostileServer endpoint(HostileServer::silent());
  CaptureResult r = ec2_create("silent", endpoint.port(), "1");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("machine 'silent'"));
  EXPECT_THAT(r.err, HasSubstr("did not answer"));
  EXPECT_THAT(r.err, HasSubstr("hint: the endpoint did not answer in time"));
}

TEST(HostileCli, FirstSigtermStopsEc2CreateWaitingOnASilentEndpoint) {
  HostileServer endpoint(HostileServer::silent());
  CliRunner cli;
  TempDir dir("gm-ec2-signal");
  SpawnOptions spawn;
  spawn.env = ec2_env(cli, endpoint.port());
  spawn.stderr_path = dir / "create.err";
  Process create({GM_BINARY_PATH, "create", "--driver", "ec2", "wait"}, spawn);
  ASSERT_TRUE(eventually([&] { return endpoint.connections() > 0; }));
  expect_create_stops_on_sigterm(create, dir / "create.err", "wait");
}

TEST(HostileCli, FirstSigtermDuringEc2CreateNamesTheInstanceLeftBilling) {
  // Slow boots, so that the signal lands while create waits for the instance to run.
  Ec2EmulatorFixture emu(nlohmann::json{{"delays", {{"pending", 30.0}}}});
  std::unique_ptr<Process> create = emu.gm_async(ec2::create_args("bill", {"--wait", "running"}));
  ASSERT_TRUE(file_shows(emu.dir() / "async.err", "to run"));
  expect_create_stops_on_sigterm(*create, emu.dir() / "async.err", "bill");
  std::string err = read_text(emu.dir() / "async.err");
  EXPECT_THAT(err, HasSubstr("gpumachine rm bill"));
  EXPECT_EQ(emu.live_instances().size(), 1u);
  EXPECT_THAT(err, HasSubstr("instance i-"));
  EXPECT_THAT(err, HasSubstr("left running and billing"));
  // The undo the message names works.
  CaptureResult r = emu.gm({"rm", "bill"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(emu.leaks().empty());
}

}  // namespace
}  // namespace gm::testing
