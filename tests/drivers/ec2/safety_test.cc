// Nothing lost, leaked or destroyed by surprise (issue 15's cloud items): gc touches only this
// home's old orphans and asks first; rm waits out EC2's eventual consistency for a launch whose
// answer never came and for a security group it just made; autostop's action reaches the
// instance; spot + stop is refused before any call; the agent goes on as soon as SSH answers;
// rm --force fails when something is left (ls_gc_test.cc).
#include "cli/cli_runner.h"
#include "drivers/ec2/ec2_test_util.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <thread>

namespace gm::testing::ec2 {
namespace {

/// The id of us-east-1's default security group (a group of "your own").
std::string default_group(Ec2EmulatorFixture& emu) {
  emu.gm({"gc"});  // any call makes the emulator set the region up
  nlohmann::json state = emu.state();
  for (const auto& [id, sg] : state["regions"]["us-east-1"]["security_groups"].items()) {
    if (sg["groupName"] == "default") {
      return id;
    }
  }
  return "";
}

/// Kinds and machines of a gc JSON list.
std::set<std::string> machines_of(const nlohmann::json& rows) {
  std::set<std::string> out;
  for (const auto& row : rows) {
    out.insert(row["machine"].get<std::string>());
  }
  return out;
}

TEST(Ec2Gc, DeletesOnlyThisHomesOldOrphansAndAsksFirst) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  TempDir other("gm-other-home");
  const std::map<std::string, std::string> teammate = {{"GPUMACHINE_HOME", other.path().string()}};
  for (const char* name : {"lost", "broken"}) {
    CaptureResult r = emu.gm(create_args(name, {"--wait", "running"}));
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  CaptureResult r = emu.gm(create_args("theirs", {"--wait", "running"}), teammate);
  ASSERT_EQ(r.status, 0) << describe(r);
  std::filesystem::remove_all(emu.home() / "machines/lost");              // an orphan of this home
  write_text(emu.home() / "machines/broken/machine.json", "{ not json");  // unreadable

  // No terminal and no --yes: refused before anything is scanned or deleted.
  r = emu.gm({"gc", "--delete", "--min-age", "0s"});
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("--yes"), std::string::npos) << r.err;
  EXPECT_EQ(emu.live_instances().size(), 3u);

  r = emu.gm({"gc", "--format", "json", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(machines_of(out["orphans"]), std::set<std::string>{"lost"}) << out.dump(2);
  EXPECT_EQ(machines_of(out["kept"]), (std::set<std::string>{"broken", "theirs"})) << out.dump(2);
  for (const auto& row : out["kept"]) {
    std::string reason = row["reason"];
    EXPECT_NE(reason.find(row["machine"] == "broken" ? "cannot be read" : "another home"),
              std::string::npos)
        << reason;
  }

  // Young resources are never touched (the default --min-age is minutes).
  r = emu.gm({"--yes", "gc", "--delete"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.live_instances().size(), 3u);

  r = emu.gm({"--yes", "gc", "--delete", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  std::set<std::string> live;
  for (const auto& inst : emu.live_instances()) {
    live.insert(inst["tags"]["gpumachine:machine"].get<std::string>());
  }
  EXPECT_EQ(live, (std::set<std::string>{"broken", "theirs"}));

  // --all-homes includes the teammate's machine; the unreadable record's stays protected.
  r = emu.gm({"gc", "--format", "json", "--min-age", "0s", "--all-homes"});
  ASSERT_EQ(r.status, 0) << describe(r);
  out = nlohmann::json::parse(r.out);
  EXPECT_EQ(machines_of(out["orphans"]), std::set<std::string>{"theirs"}) << out.dump(2);
  EXPECT_EQ(machines_of(out["kept"]), std::set<std::string>{"broken"}) << out.dump(2);

  r = emu.gm({"rm", "theirs"}, teammate);
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm({"rm", "--force", "broken"});  // the record goes; its resources are orphans now
  r = emu.gm({"--yes", "gc", "--delete", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Rm, WaitsForALaunchWhoseAnswerNeverCame) {
  // The launch is invisible for a while (eventual consistency), create was killed while
  // RunInstances was in flight, and the user's own security group means no group deletion
  // stumbles on the instance: only the ClientToken knows it.
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}, {"consistency_delay", 4.0}});
  const std::map<std::string, std::string> window = {{"GPUMACHINE_EC2_CONSISTENCY_WINDOW", "60s"}};
  emu.fault(
      {{"action", "RunInstances"}, {"kind", "drop_after"}, {"latency_ms", 800}, {"count", 5}});
  std::unique_ptr<Process> p = emu.gm_async(
      create_args("pending", {"--wait", "running", "--ec2-security-group-id", default_group(emu)}),
      window);
  ASSERT_TRUE(wait_for_call(emu, *p, "RunInstances"));
  ::kill(p->pid(), SIGKILL);
  p->wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // what was in flight lands
  emu.clear_faults();
  ASSERT_FALSE(emu.live_instances().empty()) << emu.calls().dump(1);

  CaptureResult r = emu.gm({"rm", "pending"}, window);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("terminated instance i-"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Rm, ConfirmsASecurityGroupJustCreated) {
  // Killed right after CreateSecurityGroup answered (the group is still invisible):
  // DeleteSecurityGroup says InvalidGroup.NotFound, which is not "deleted".
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}, {"consistency_delay", 4.0}});
  const std::map<std::string, std::string> window = {{"GPUMACHINE_EC2_CONSISTENCY_WINDOW", "60s"}};
  std::unique_ptr<Process> p = emu.gm_async(create_args("fresh", {"--wait", "running"}), window);
  ASSERT_TRUE(wait_for_call(emu, *p, "AuthorizeSecurityGroupIngress"));
  ::kill(p->pid(), SIGKILL);
  p->wait();
  ASSERT_FALSE(emu.leaks().empty());
  CaptureResult r = emu.gm({"rm", "fresh"}, window);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Create, SaysTheInstanceBillsWhenItsStateCannotBeRead) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  emu.fault({{"action", "DescribeInstances"},
             {"kind", "UnauthorizedOperation"},
             {"count", 50},
             {"status", 403}});
  CaptureResult r = emu.gm(create_args("blind", {"--wait", "running"}));
  EXPECT_EQ(r.status, 1) << describe(r);
  ASSERT_EQ(emu.live_instances().size(), 1u);
  std::string id = emu.live_instances().front()["id"];
  EXPECT_NE(r.err.find("instance " + id), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("running and billing"), std::string::npos) << r.err;
  emu.clear_faults();
  r = emu.gm({"rm", "blind"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Spot, AutostopStopIsRefusedBeforeAnyCall) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("spot", {"--ec2-spot", "--autostop", "30m"}));
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("--autostop-action terminate"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.calls()["calls"].empty()) << emu.calls().dump(2);
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/spot"));
}

/// An emulator whose instances' sessions have a stand-in systemctl and a scratch GM_SYSROOT, so
/// the autostop agent installs into a folder of the test, never onto the machine running it.
class Ec2AutostopAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root: emulated instances' sshds listen on 127.x:22";
    }
    std::filesystem::create_directories(m_dir / "stubs");
    std::filesystem::create_directories(m_dir / "root");
    write_text(m_dir / "stubs/systemctl", "#!/bin/sh\nexit 0\n", 0755);
    m_emu = std::make_unique<Ec2EmulatorFixture>(nlohmann::json{
        {"instance_env",
         {{"PATH", (m_dir / "stubs").string() + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                "/usr/bin:/sbin:/bin"},
          {"GM_SYSROOT", (m_dir / "root").string()}}}});
  }

  void TearDown() override {
    // The agent must have gone under GM_SYSROOT, never onto the machine running the tests.
    EXPECT_FALSE(std::filesystem::exists("/etc/gpumachine/autostop.conf"))
        << "the autostop agent was installed on the test machine itself";
  }

  std::string agent_config() {
    std::filesystem::path conf = m_dir / "root/etc/gpumachine/autostop.conf";
    return std::filesystem::exists(conf) ? read_text(conf) : "";
  }

  nlohmann::json instance() {
    std::vector<nlohmann::json> live = m_emu->live_instances();
    return live.empty() ? nlohmann::json::object() : live.front();
  }

  TempDir m_dir{"gm-ec2-agent"};
  std::unique_ptr<Ec2EmulatorFixture> m_emu;
};

TEST_F(Ec2AutostopAgent, CreateInstallsItAsSoonAsSshAnswers) {
  // --wait ssh: no provisioning, yet the agent is on.
  CaptureResult r = m_emu->gm(create_args("early", {"--wait", "ssh", "--autostop", "30m"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(agent_config().find("IDLE_SECONDS=1800"), std::string::npos) << agent_config();
  nlohmann::json rec =
      nlohmann::json::parse(read_text(m_emu->home() / "machines/early/machine.json"));
  EXPECT_TRUE(rec["cost"]["agent_on_host"].get<bool>()) << rec.dump(2);
  r = m_emu->gm({"rm", "early"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(m_emu->leaks().empty()) << lines(m_emu->leaks());
}

TEST_F(Ec2AutostopAgent, ActionSetsTheInstancesShutdownBehavior) {
  CaptureResult r = m_emu->gm(create_args("act", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(instance()["shutdownBehavior"], "stop");
  r = m_emu->gm({"autostop", "act", "30m", "--action", "terminate"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(instance()["shutdownBehavior"], "terminate");
  EXPECT_NE(agent_config().find("ACTION=terminate"), std::string::npos) << agent_config();
  r = m_emu->gm({"autostop", "act", "1h", "--action", "stop"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(instance()["shutdownBehavior"], "stop");
  r = m_emu->gm({"rm", "act"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(m_emu->leaks().empty()) << lines(m_emu->leaks());
}

TEST(Ec2SshAllow, AFailedConnectionNamesTheFixAndSshAllowAppliesIt) {
  // The laptop moved: its address is no longer the /32 the security group admits.
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("moved", {"--wait", "running", "--ec2-open-port", "8888"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::map<std::string, std::string> elsewhere = {{"GPUMACHINE_CALLER_IP", "127.0.0.9"}};
  r = emu.gm({"ssh", "moved", "--", "true"}, elsewhere);
  EXPECT_NE(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("`gpumachine ssh-allow moved`"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("127.0.0.9/32"), std::string::npos) << r.err;

  r = emu.gm({"ssh-allow", "moved"}, elsewhere);
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json inst = emu.live_instances().front();
  nlohmann::json sg =
      emu.state()["regions"]["us-east-1"]["security_groups"][inst["groups"][0].get<std::string>()];
  ASSERT_EQ(sg["ingress"].size(), 2u) << sg.dump(2);
  for (const auto& rule : sg["ingress"]) {
    EXPECT_EQ(rule["cidr"], "127.0.0.9/32");
  }
  r = emu.gm({"ssh", "moved", "--", "true"}, elsewhere);
  EXPECT_EQ(r.err.find("ssh-allow"), std::string::npos) << r.err;  // nothing to fix now
  r = emu.gm({"rm", "moved"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(AutostopGuard, CreateOnAGenericHostNeedsAllowPoweroff) {
  // Refused offline, like `autostop` refuses it: nothing could start the host again.
  CliRunner cli;
  ASSERT_EQ(run_capture({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                         (cli.dir().path() / "key").string()})
                .status,
            0);
  std::vector<std::string> args = cli.generic_create_args("g1", "127.0.0.1", free_port(), "root",
                                                          (cli.dir().path() / "key").string());
  args.insert(args.end(), {"--autostop", "30m"});
  CaptureResult r = cli.run(args);
  EXPECT_EQ(r.status, 5) << describe(r);
  EXPECT_NE(r.err.find("--allow-poweroff"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(cli.home() / "machines/g1"));
}

}  // namespace
}  // namespace gm::testing::ec2
