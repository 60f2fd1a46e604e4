// The host key that travels in user data is replaced by one made on the host, and restart waits
// for the new boot, both against the emulator's real sshd per instance.
#include "drivers/ec2/ec2_test_util.h"

#include "gm/error.h"
#include "ssh/session.h"
#include "util/crypto.h"

#include <thread>

namespace gm::testing::ec2 {
namespace {

nlohmann::json record_of(Ec2EmulatorFixture& emu, const std::string& name) {
  return nlohmann::json::parse(read_text(emu.home() / "machines" / name / "machine.json"));
}

/// "type base64" of the ed25519 host key in the instance's user data (what any process on the
/// instance can read from the instance metadata).
std::string user_data_host_key(const nlohmann::json& instance) {
  std::string user_data = gm::util::base64_decode(instance["userData"].get<std::string>());
  const std::string field = "ed25519_public:";
  std::size_t at = user_data.find(field);
  EXPECT_NE(at, std::string::npos) << user_data;
  std::string line = user_data.substr(at + field.size());
  line = line.substr(0, line.find('\n'));
  line.erase(0, line.find_first_not_of(" \"'"));
  std::size_t second_space = line.find(' ', line.find(' ') + 1);
  return line.substr(0, std::min(second_space, line.find_last_not_of(" \"'") + 1));
}

TEST(Ec2HostKey, CreateReplacesTheUserDataKeyWithOneMadeOnTheHost) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("hk", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json rec = record_of(emu, "hk");
  const std::string pinned = rec["ssh"]["host_key"];
  const std::string from_user_data = user_data_host_key(emu.live_instances().at(0));
  ASSERT_TRUE(from_user_data.starts_with("ssh-ed25519 ")) << from_user_data;
  EXPECT_TRUE(pinned.starts_with("ssh-ed25519 ")) << pinned;
  EXPECT_NE(pinned, from_user_data);
  EXPECT_TRUE(rec["driver_config"]["host_key_replaced"].get<bool>());
  EXPECT_EQ(rec["driver_config"].value("host_key_next", ""), "");

  // The host no longer presents the user-data key: a client pinning it is refused.
  SshTarget target;
  target.host = rec["ssh"]["host"];
  target.port = rec["ssh"]["port"];
  target.user = rec["ssh"]["user"];
  target.key_path = rec["ssh"]["key_path"];
  target.host_key = from_user_data;
  ssh::ConnectOptions options;
  options.target = target;
  try {
    ssh::Session::connect(options);
    ADD_FAILURE() << "the user-data host key still identifies the host";
  } catch (const SshError& e) {
    EXPECT_EQ(e.stage(), SshError::Stage::hostkey) << e.what();
  }

  // ssh works against the new pin, also after stop and start (the key is on the host's disk).
  r = emu.gm({"ssh", "hk", "--", "echo", "pinned-ok"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("pinned-ok"), std::string::npos);
  ASSERT_EQ(emu.gm({"stop", "hk"}).status, 0);
  r = emu.gm({"start", "hk"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(record_of(emu, "hk")["ssh"]["host_key"], pinned);
  r = emu.gm({"ssh", "hk", "--", "echo", "again"});
  EXPECT_EQ(r.status, 0) << describe(r);
  ASSERT_EQ(emu.gm({"rm", "hk"}).status, 0);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

// A run that died after the host made its new key and the record saved it (host_key_next), but
// before the key was put in use: the next command that waits for SSH finishes the replacement.
TEST(Ec2HostKey, AnInterruptedReplacementIsFinishedByTheNextWaitForSsh) {
  TempDir root("gm-ec2-root");
  Ec2EmulatorFixture emu(nlohmann::json{{"instance_env", {{"GM_SYSROOT", root.path().string()}}}});
  CaptureResult r = emu.gm(create_args("hr", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  for (int i = 0; emu.live_instances().at(0)["sshd_pid"].is_null(); ++i) {
    ASSERT_LT(i, 600) << "the instance's sshd never came up";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The host's half of the interrupted run (sessions of emulated instances run here).
  SpawnOptions on_host;
  on_host.env = {{"GM_SYSROOT", root.path().string()}};
  CaptureResult made = run_capture(
      {"sh", std::string(GM_SOURCE_DIR) + "/src/drivers/ec2/host_key.sh", "prepare"}, "", on_host);
  ASSERT_EQ(made.status, 0) << made.err;
  const std::string next = made.out.substr(0, made.out.find(' ', made.out.find(' ') + 1));
  std::filesystem::path file = emu.home() / "machines/hr/machine.json";
  nlohmann::json rec = nlohmann::json::parse(read_text(file));
  const std::string user_data_key = rec["ssh"]["host_key"];
  rec["driver_config"]["host_key_next"] = next;
  write_text(file, rec.dump(), 0600);

  r = emu.gm({"start", "hr"});
  ASSERT_EQ(r.status, 0) << describe(r);
  rec = record_of(emu, "hr");
  EXPECT_EQ(rec["ssh"]["host_key"], next);
  EXPECT_NE(rec["ssh"]["host_key"], user_data_key);
  EXPECT_TRUE(rec["driver_config"].value("host_key_replaced", false));
  r = emu.gm({"ssh", "hr", "--", "true"});
  EXPECT_EQ(r.status, 0) << describe(r);
  ASSERT_EQ(emu.gm({"rm", "hr"}).status, 0);
}

// The guest keeps answering for a while after RebootInstances (it is shutting down): restart
// must not take the old boot's sshd for the new one. The instances get a simulated root whose
// boot id the emulator renews at every boot.
TEST(Ec2Restart, WaitsUntilTheHostReportsANewBootId) {
  TempDir root("gm-ec2-root");
  Ec2EmulatorFixture emu(nlohmann::json{{"instance_env", {{"GM_SYSROOT", root.path().string()}}},
                                        {"delays", {{"reboot_begin", 8}}}});
  const std::filesystem::path boot_id_file = root / "proc/sys/kernel/random/boot_id";
  CaptureResult r = emu.gm(create_args("rb", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::string before = read_text(boot_id_file);
  ASSERT_FALSE(before.empty());

  r = emu.gm({"restart", "rb"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(read_text(boot_id_file), before) << "restart returned before the reboot";
  r = emu.gm({"ssh", "rb", "--", "cat", "\"$GM_SYSROOT/proc/sys/kernel/random/boot_id\""});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out, before);
  ASSERT_EQ(emu.gm({"rm", "rb"}).status, 0);
}

}  // namespace
}  // namespace gm::testing::ec2
