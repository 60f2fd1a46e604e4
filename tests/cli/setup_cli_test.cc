// Provisioning and the GPU probe end to end through the real binary and a real sshd. The
// provisioning host is a simulated host (tests/support/simhost): the login's PATH holds only stub
// package tools and a fixed set of harmless real ones, so the real scripts run unmodified and
// nothing on this machine is installed. The probe runs against this machine (no NVIDIA driver)
// and against the fake driver library the tests build.
#include "cli/cli_runner.h"
#include "gm/error.h"
#include "support/sshd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace gm::testing {

using ::testing::HasSubstr;

namespace {

const std::string k_simhost = std::string(GM_SOURCE_DIR) + "/tests/support/simhost/simhost";

/// authorized_keys options that put a login into the environment `simhost env` prints.
std::string simhost_key_options(const std::filesystem::path& host,
                                const std::filesystem::path& reboot_marker) {
  CaptureResult env = run_capture({k_simhost, "env", host.string()});
  std::istringstream lines(env.out);
  std::string line, options;
  while (std::getline(lines, line)) {
    if (!line.empty()) {
      options += (options.empty() ? "" : ",") + std::string("environment=\"") + line + "\"";
    }
  }
  // The simulated reboot marks itself; the test's boot thread stops and restarts the sshd.
  options += ",environment=\"SIMHOST_ON_SHUTDOWN=touch " + reboot_marker.string() + "\"";
  options += ",environment=\"SIMHOST_ON_BOOT=true\"";
  return options;
}

/// Plays the host's reboots: whenever the marker appears, sshd goes down for a second.
class BootPlayer {
 public:
  BootPlayer(SshdFixture& sshd, std::filesystem::path marker)
      : m_thread([this, &sshd, marker] {
          while (!m_done) {
            if (std::filesystem::exists(marker)) {
              std::filesystem::remove(marker);
              sshd.stop();
              std::this_thread::sleep_for(std::chrono::seconds(1));
              sshd.start();
              ++m_boots;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        }) {}
  ~BootPlayer() {
    m_done = true;
    m_thread.join();
  }
  int boots() const { return m_boots; }

 private:
  std::atomic<bool> m_done{false};
  std::atomic<int> m_boots{0};
  std::thread m_thread;
};

/// A simulated host (`simhost init` with the given options, instant reboots) behind a real
/// sshd, its reboots played by a BootPlayer; create_args() provisions it as generic "gpu1".
class SimulatedMachine {
 public:
  explicit SimulatedMachine(const std::vector<std::string>& init_options) {
    std::vector<std::string> argv = {k_simhost, "init", host().string()};
    argv.insert(argv.end(), init_options.begin(), init_options.end());
    argv.insert(argv.end(), {"--reboot-delay", "0"});
    CaptureResult made = run_capture(argv);
    if (made.status != 0) {
      throw std::runtime_error("simhost init: " + made.err);
    }
    SshdOptions options;
    options.key_options = simhost_key_options(host(), m_dir.path() / "rebooting");
    m_sshd = std::make_unique<SshdFixture>(options);
    m_player = std::make_unique<BootPlayer>(*m_sshd, m_dir.path() / "rebooting");
  }

  /// The simulated host's directory (its sysroot is root/).
  std::filesystem::path host() const { return m_dir.path() / "host"; }
  int boots() const { return m_player->boots(); }
  /// `create` of generic machine "gpu1" on this host with provisioning, without the probe (no
  /// GPU here), plus \a extra flags.
  std::vector<std::string> create_args(const CliRunner& cli,
                                       const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = cli.generic_create_args(
        "gpu1", m_sshd->host(), m_sshd->port(), m_sshd->user(), m_sshd->client_key_path().string());
    args.erase(std::find(args.begin(), args.end(), "--no-provision"));
    args.insert(args.begin() + 1, "--no-probe");
    args.insert(args.begin() + 2, extra.begin(), extra.end());
    return args;
  }

 private:
  TempDir m_dir{"gm-simhost"};
  std::unique_ptr<SshdFixture> m_sshd;
  std::unique_ptr<BootPlayer> m_player;  // stopped before the sshd it restarts
};

}  // namespace

TEST(ProvisionCli, FreshUbuntuT4ThroughRealSshdThenNoOpRerun) {
  SimulatedMachine machine({"--os", "ubuntu-24.04", "--gpu", "t4", "--nouveau"});
  CliRunner cli;
  CaptureResult made = cli.run(machine.create_args(cli));
  ASSERT_EQ(made.status, 0) << made.err;
  EXPECT_EQ(machine.boots(), 1);  // nouveau was loaded: one reboot

  nlohmann::json record = cli.json({"inspect", "gpu1"});
  const nlohmann::json& prov = record["facts"]["provision"];
  EXPECT_EQ(prov["driver_branch"], 595);
  EXPECT_EQ(prov["driver_flavour"], "open");
  EXPECT_EQ(prov["reboots"], 1);
  EXPECT_THAT(prov["versions"]["driver_version"].get<std::string>(), ::testing::StartsWith("595."));
  EXPECT_FALSE(prov["versions"]["docker_version"].get<std::string>().empty());
  EXPECT_EQ(record["facts"]["host"]["gpus"][0]["generation"], "turing");

  // A second run on the ready host applies nothing, over one connection.
  nlohmann::json again = cli.json({"provision", "gpu1"});
  EXPECT_EQ(again["changed"], false);
  EXPECT_EQ(again["handshakes"], 1);
  EXPECT_EQ(again["reboots"], 0);
  for (const auto& step : again["steps"]) {
    EXPECT_NE(step["outcome"], "applied") << step.dump();
  }
  CaptureResult plan = cli.run({"provision", "--dry-run", "gpu1"});
  EXPECT_EQ(plan.status, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("595"));
}

TEST(ProvisionCli, DriverChoicesStayWithTheMachineUntilOthersAreNamed) {
  SimulatedMachine machine({"--os", "ubuntu-24.04", "--gpu", "t4"});
  const std::filesystem::path host = machine.host();
  CliRunner cli;
  CaptureResult made = cli.run(machine.create_args(cli, {"--no-gsp"}));
  ASSERT_EQ(made.status, 0) << made.err;
  const std::filesystem::path gsp_conf = host / "root/etc/modprobe.d/gpumachine-gsp.conf";
  ASSERT_TRUE(std::filesystem::exists(gsp_conf));
  nlohmann::json record = cli.json({"inspect", "gpu1"});
  EXPECT_EQ(record["provision"]["overrides"], nlohmann::json({{"no_gsp", true}}));

  // The module is gone (say, a boot on a new kernel), so the driver step runs again. A repair
  // that names no choice uses the machine's and keeps GSP off; the default for a T4 would be the
  // open modules, which cannot turn it off.
  std::filesystem::resize_file(host / "root/proc/modules", 0);
  std::filesystem::remove_all(host / "root/sys/module/nvidia");
  std::filesystem::remove_all(host / "root/proc/driver/nvidia");
  nlohmann::json plan = cli.json({"provision", "--dry-run", "gpu1"});
  EXPECT_EQ(plan["driver_flavour"], "proprietary");
  CaptureResult repaired = cli.run({"provision", "gpu1"});
  ASSERT_EQ(repaired.status, 0) << repaired.err;
  EXPECT_TRUE(std::filesystem::exists(gsp_conf));
  EXPECT_EQ(read_text(host / "root/proc/driver/nvidia/params"), "EnableGpuFirmware: 0\n");
  record = cli.json({"inspect", "gpu1"});
  EXPECT_EQ(record["facts"]["provision"]["driver_flavour"], "proprietary");

  // Naming a choice replaces them all, and the new set is what the machine keeps.
  nlohmann::json open = cli.json({"provision", "gpu1", "--driver-flavour", "open"});
  EXPECT_EQ(open["changed"], true);
  EXPECT_FALSE(std::filesystem::exists(gsp_conf));
  record = cli.json({"inspect", "gpu1"});
  EXPECT_EQ(record["provision"]["overrides"], nlohmann::json({{"driver_flavour", "open"}}));
  EXPECT_EQ(record["facts"]["provision"]["driver_flavour"], "open");
}

TEST(ProvisionCli, MirrorsFromConfigYamlReachTheHostAndStayWithTheMachine) {
  SimulatedMachine machine({"--os", "debian-12"});
  const std::filesystem::path sources = machine.host() / "root/etc/apt/sources.list.d";
  CliRunner cli;
  std::filesystem::create_directories(cli.home());
  std::ofstream(cli.home() / "config.yaml") << "docker-mirror: http://127.0.0.1:9/docker/\n";
  CaptureResult made = cli.run(machine.create_args(cli));
  ASSERT_EQ(made.status, 0) << made.err;
  EXPECT_THAT(read_text(sources / "docker.sources"),
              HasSubstr("URIs: http://127.0.0.1:9/docker/debian\n"));
  nlohmann::json record = cli.json({"inspect", "gpu1"});
  EXPECT_EQ(record["provision"]["overrides"],
            nlohmann::json({{"docker_mirror", "http://127.0.0.1:9/docker"}}));

  // A later run without mirrors uses the machine's; naming one replaces them.
  auto forget_docker = [&] {
    for (const char* f :
         {"pkgs/docker-ce", "bin/docker", "services/docker.exists", "services/docker.enabled",
          "services/docker.active", "root/etc/apt/sources.list.d/docker.sources"}) {
      std::filesystem::remove(machine.host() / f);
    }
  };
  forget_docker();
  ASSERT_EQ(cli.run({"provision", "gpu1"}).status, 0);
  EXPECT_THAT(read_text(sources / "docker.sources"), HasSubstr("http://127.0.0.1:9/docker/debian"));
  forget_docker();
  CaptureResult plan = cli.run(
      {"provision", "--dry-run", "gpu1", "--docker-mirror", "https://nexus.example.com/docker"});
  ASSERT_EQ(plan.status, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("https://nexus.example.com/docker/debian/gpg"));
}

TEST(ProvisionCli, ChoicesNoHostCanUseAreRefusedBeforeAnyConnection) {
  CliRunner cli;
  // Refused by the flags alone: the machine does not even exist.
  CaptureResult url =
      cli.run({"provision", "nosuch", "--cuda-mirror", "http://m.example.com/$(id)"});
  EXPECT_EQ(url.status, exit_code::k_usage);
  EXPECT_THAT(url.err, HasSubstr("--cuda-mirror"));
  CaptureResult r620 = cli.run({"provision", "nosuch", "--driver-branch", "620", "--no-gsp"});
  EXPECT_EQ(r620.status, exit_code::k_usage);
  EXPECT_THAT(r620.err, HasSubstr("no proprietary kernel modules"));
}

TEST(ProbeCli, HostWithoutNvidiaDriverGetsItsOwnExitStatus) {
  SshdOptions options;
  options.key_options = "environment=\"GM_PROBE_LIBCUDA=/nonexistent/libcuda.so.1\"";
  SshdFixture sshd(options);
  CliRunner cli;
  ASSERT_EQ(cli.run(cli.generic_create_args("cpu1", sshd.host(), sshd.port(), sshd.user(),
                                            sshd.client_key_path().string()))
                .status,
            0);
  CaptureResult r = cli.run({"probe", "cpu1"});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_THAT(r.out, HasSubstr("no NVIDIA driver"));
  nlohmann::json doc = nlohmann::json::parse(cli.run({"--format", "json", "probe", "cpu1"}).out);
  EXPECT_EQ(doc["host"]["status"], "no_driver");
}

class ProbeCliFake : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(ProbeCliFake, VerdictAndExitStatusThroughSsh) {
  const auto& [mode, expected_status] = GetParam();
  SshdOptions options;
  options.key_options = std::string("environment=\"GM_PROBE_LIBCUDA=") + GM_FAKE_CUDA_PATH +
                        "\",environment=\"GM_PROBE_LIBNVML=" + GM_FAKE_CUDA_PATH +
                        "\",environment=\"FAKE_CUDA_MODE=" + mode + "\"";
  SshdFixture sshd(options);
  CliRunner cli;
  ASSERT_EQ(cli.run(cli.generic_create_args("gpu1", sshd.host(), sshd.port(), sshd.user(),
                                            sshd.client_key_path().string()))
                .status,
            0);
  CaptureResult r = cli.run({"probe", "gpu1"});
  EXPECT_EQ(r.status, expected_status) << r.out << r.err;
  // The result is cached in the record and summarised by ls.
  nlohmann::json ls = cli.json({"ls", "--cached"});
  std::string gpu = ls[0]["gpu"];
  if (expected_status == 0) {
    EXPECT_THAT(gpu, HasSubstr("ok"));
  } else {
    EXPECT_THAT(gpu, ::testing::Not(HasSubstr(" ok")));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ProbeCliFake,
                         ::testing::Values(std::make_pair("ok", 0),
                                           std::make_pair("wrong_result", 1),
                                           std::make_pair("ecc", 1), std::make_pair("err803", 1),
                                           std::make_pair("no_device", 6)),
                         [](const auto& info) { return info.param.first; });

}  // namespace gm::testing
