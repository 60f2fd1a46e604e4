// The whole life of an ec2 machine through the real CLI against the emulator, checking what
// exists in "AWS" after each step.
#include "drivers/ec2/ec2_test_util.h"

#include "util/crypto.h"
#include "util/gzip.h"

#include <fstream>

namespace gm::testing::ec2 {
namespace {

/// The first live instance's user data as cloud-init reads it (inflated when it went gzipped).
std::string sent_user_data(Ec2EmulatorFixture& emu) {
  std::string raw =
      gm::util::base64_decode(emu.live_instances().at(0)["userData"].get<std::string>());
  return raw.starts_with("\x1f\x8b") ? gm::util::gunzip(raw) : raw;
}

nlohmann::json only_instance(Ec2EmulatorFixture& emu) {
  std::vector<nlohmann::json> live = emu.live_instances();
  EXPECT_EQ(live.size(), 1u);
  return live.empty() ? nlohmann::json::object() : live.front();
}

TEST(Ec2Lifecycle, CreateSshStopStartRmLeavesNothing) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args(
      "life", {"--ec2-tag", "team=ml", "--ec2-volume-type", "gp3", "--ec2-open-port", "8888"}));
  ASSERT_EQ(r.status, 0) << describe(r);

  // The record: ledger, host key pinned, timings.
  nlohmann::json rec = nlohmann::json::parse(read_text(emu.home() / "machines/life/machine.json"));
  EXPECT_FALSE(rec["progress"]["incomplete"].get<bool>());
  EXPECT_EQ(rec["cost"]["power_off_action"], "stop");
  EXPECT_TRUE(rec["ssh"]["host_key"].get<std::string>().starts_with("ssh-ed25519 "));
  EXPECT_FALSE(rec["timings"].empty());
  EXPECT_TRUE(std::filesystem::exists(emu.home() / "machines/life/id_ed25519"));
  EXPECT_EQ(std::filesystem::status(emu.home() / "machines/life/id_ed25519").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  nlohmann::json inst = only_instance(emu);
  const std::string id = rec["id"];
  EXPECT_EQ(inst["tags"]["Name"], "life");
  EXPECT_EQ(inst["tags"]["gpumachine:machine"], "life");
  EXPECT_EQ(inst["tags"]["gpumachine:id"], id);
  EXPECT_EQ(inst["tags"]["team"], "ml");
  EXPECT_EQ(inst["metadataOptions"]["httpTokens"], "required");
  EXPECT_EQ(inst["metadataOptions"]["httpPutResponseHopLimit"], 2);
  EXPECT_EQ(inst["shutdownBehavior"], "stop");
  EXPECT_EQ(inst["instanceType"], "t3.micro");
  EXPECT_FALSE(inst["clientToken"].get<std::string>().empty());

  nlohmann::json region = emu.state()["regions"]["us-east-1"];
  // Security group: ours, tagged, SSH and the opened port from the caller's /32 only.
  ASSERT_EQ(inst["groups"].size(), 1u);
  nlohmann::json sg = region["security_groups"][inst["groups"][0].get<std::string>()];
  EXPECT_EQ(sg["tags"]["gpumachine:id"], id);
  ASSERT_EQ(sg["ingress"].size(), 2u);
  for (const auto& rule : sg["ingress"]) {
    EXPECT_EQ(rule["cidr"], "127.0.0.1/32");
    EXPECT_EQ(rule["protocol"], "tcp");
  }
  EXPECT_EQ(sg["ingress"][0]["fromPort"], 22);
  // Key pair: imported ed25519, tagged.
  ASSERT_EQ(region["key_pairs"].size(), 1u);
  nlohmann::json kp = region["key_pairs"].begin().value();
  EXPECT_EQ(kp["keyType"], "ed25519");
  EXPECT_EQ(kp["tags"]["gpumachine:id"], id);
  EXPECT_EQ(inst["keyName"], kp["keyName"]);
  // Root volume: size and type as asked, tagged, deleted with the instance.
  ASSERT_EQ(inst["blockDevices"].size(), 1u);
  nlohmann::json vol = region["volumes"][inst["blockDevices"][0]["volumeId"].get<std::string>()];
  EXPECT_EQ(vol["size"], 20);
  EXPECT_EQ(vol["volumeType"], "gp3");
  EXPECT_EQ(vol["tags"]["gpumachine:machine"], "life");
  EXPECT_TRUE(inst["blockDevices"][0]["deleteOnTermination"].get<bool>());
  // The network interface is tagged too.
  nlohmann::json eni = region["enis"][inst["networkInterfaceId"].get<std::string>()];
  EXPECT_EQ(eni["tags"]["gpumachine:id"], id);

  // SSH works against the pinned key.
  r = emu.gm({"ssh", "life", "--", "echo", "hello-from-ec2"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("hello-from-ec2"), std::string::npos);
  const std::string first_ip = inst["publicIp"];
  std::string ssh_config = read_text(emu.home() / "ssh_config");
  EXPECT_NE(ssh_config.find(first_ip), std::string::npos);

  // ls (live) shows it running with its address.
  r = emu.gm({"ls", "--format", "json"});
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["state"], "running");
  EXPECT_EQ(rows[0]["ip"], first_ip);
  EXPECT_EQ(rows[0]["region"], "us-east-1");

  // stop: instance stopped, address released.
  r = emu.gm({"stop", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  inst = only_instance(emu);
  EXPECT_EQ(inst["state"], "stopped");
  r = emu.gm({"status", "life"});
  EXPECT_EQ(r.out, "stopped\n") << describe(r);

  // start: a new address, recorded, in ssh_config, and SSH works there.
  r = emu.gm({"start", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  inst = only_instance(emu);
  EXPECT_EQ(inst["state"], "running");
  const std::string second_ip = inst["publicIp"];
  EXPECT_NE(second_ip, first_ip);
  rec = nlohmann::json::parse(read_text(emu.home() / "machines/life/machine.json"));
  EXPECT_EQ(rec["ssh"]["host"], second_ip);
  ssh_config = read_text(emu.home() / "ssh_config");
  EXPECT_NE(ssh_config.find(second_ip), std::string::npos);
  EXPECT_EQ(ssh_config.find(first_ip), std::string::npos);
  r = emu.gm({"ssh", "life", "--", "echo", "again"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("again"), std::string::npos);

  // kill (forced stop), then rm from stopped.
  r = emu.gm({"kill", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(only_instance(emu)["state"], "stopped");

  r = emu.gm({"rm", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/life"));
  // rm is idempotent in the sense that the machine is simply gone now.
  r = emu.gm({"rm", "life"});
  EXPECT_EQ(r.status, 3) << describe(r);
}

TEST(Ec2Lifecycle, GpuTypeGetsDeepLearningImageAndRestartWorks) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm({"create", "--driver", "amazonec2", "gpu", "--amazonec2-instance-type",
                            "g4dn.xlarge", "--ec2-ssh-user", login_user(), "--format", "json"});
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json out = nlohmann::json::parse(r.out);
  EXPECT_EQ(out["gpu"], "1x T4");
  EXPECT_EQ(out["instance_type"], "g4dn.xlarge");
  nlohmann::json rec = nlohmann::json::parse(read_text(emu.home() / "machines/gpu/machine.json"));
  EXPECT_TRUE(rec["driver_config"]["image_name"].get<std::string>().starts_with(
      "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04)"));
  nlohmann::json region = emu.state()["regions"]["us-east-1"];
  nlohmann::json inst = emu.live_instances().at(0);
  nlohmann::json vol = region["volumes"][inst["blockDevices"][0]["volumeId"].get<std::string>()];
  EXPECT_EQ(vol["size"], 100);  // the default root size

  r = emu.gm({"restart", "gpu"});
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm({"ssh", "gpu", "--", "true"});
  EXPECT_EQ(r.status, 0) << describe(r);
  r = emu.gm({"rm", "gpu"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Lifecycle, UserDataIsMergedAsMultipartMime) {
  Ec2EmulatorFixture emu;
  std::filesystem::path script = emu.dir() / "boot.sh";
  write_text(script, "#!/bin/sh\necho booted > /tmp/gm-user-data\n");
  CaptureResult r =
      emu.gm(create_args("ud", {"--ec2-user-data", script.string(), "--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json inst = emu.live_instances().at(0);
  std::string user_data = gm::util::base64_decode(inst["userData"].get<std::string>());
  EXPECT_NE(user_data.find("multipart/mixed"), std::string::npos);
  EXPECT_NE(user_data.find("text/cloud-config"), std::string::npos);
  EXPECT_NE(user_data.find("ed25519_private"), std::string::npos);
  EXPECT_NE(user_data.find("text/x-shellscript"), std::string::npos);
  EXPECT_NE(user_data.find("echo booted"), std::string::npos);
  // --wait running: no SSH attempted, still a complete machine.
  nlohmann::json rec = nlohmann::json::parse(read_text(emu.home() / "machines/ud/machine.json"));
  EXPECT_FALSE(rec["progress"]["incomplete"].get<bool>());
  r = emu.gm({"rm", "ud"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2

namespace gm::testing::ec2 {
namespace {

TEST(Ec2Examples, MachineFilesCreate) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  for (const auto& [file, type] : std::vector<std::pair<std::string, std::string>>{
           {"examples/cpu-debug.yaml", "t3.medium"}, {"examples/gpu-jupyter.yaml", "g5.xlarge"}}) {
    std::string name = type == "t3.medium" ? "exdebug" : "exjupyter";
    CaptureResult r = emu.gm({"create", "-f", std::string(GM_SOURCE_DIR) + "/" + file, name,
                              "--ec2-ssh-user", login_user(), "--wait", "running"},
                             {}, GM_SOURCE_DIR);
    ASSERT_EQ(r.status, 0) << file << "\n" << describe(r);
    std::vector<nlohmann::json> live = emu.live_instances();
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0]["instanceType"], type);
    r = emu.gm({"rm", name});
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2

namespace gm::testing::ec2 {

// With provisioning on (--wait gpu, the default), a plain Ubuntu GPU instance gets the
// provisioner's prelude in its user data, so package installation overlaps the boot.
TEST(Ec2Lifecycle, ProvisioningStartsFromUserDataDuringBoot) {
  Ec2EmulatorFixture emu;
  std::filesystem::remove(emu.home() / "config.yaml");  // this test asks for provisioning
  CaptureResult r = emu.gm(
      create_args("pre", {"--ec2-instance-type", "g4dn.xlarge", "--ec2-image", "ubuntu-24.04"}));
  // The emulated instance logs in to this very machine, which tests never provision.
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("refusing to provision the machine that runs the tests"), std::string::npos)
      << describe(r);
  // With the prelude the user data is over EC2's 16 KiB: it goes gzip-compressed.
  EXPECT_TRUE(gm::util::base64_decode(emu.live_instances().at(0)["userData"].get<std::string>())
                  .starts_with("\x1f\x8b"));
  std::string user_data = sent_user_data(emu);
  EXPECT_NE(user_data.find("text/x-shellscript"), std::string::npos);
  EXPECT_NE(user_data.find("gpumachine: start installing during boot"), std::string::npos);
  EXPECT_NE(user_data.find("ed25519_private"), std::string::npos);
  EXPECT_NE(user_data.find("GM_FLAVOUR='open'"), std::string::npos);
  EXPECT_NE(user_data.find("GM_NO_GSP='0'"), std::string::npos);
  ASSERT_EQ(emu.gm({"rm", "pre"}).status, 0);

  // The driver choices made on the command line reach the boot-time start too.
  r = emu.gm(create_args(
      "gsp", {"--ec2-instance-type", "g4dn.xlarge", "--ec2-image", "ubuntu-24.04", "--no-gsp"}));
  EXPECT_EQ(r.status, 1) << describe(r);
  user_data = sent_user_data(emu);
  EXPECT_NE(user_data.find("GM_FLAVOUR='proprietary'"), std::string::npos);
  EXPECT_NE(user_data.find("GM_NO_GSP='1'"), std::string::npos);
  ASSERT_EQ(emu.gm({"rm", "gsp"}).status, 0);

  // Stopping at SSH means no provisioning, so nothing is started at boot either.
  r = emu.gm(create_args("plain", {"--ec2-instance-type", "g4dn.xlarge", "--ec2-image",
                                   "ubuntu-24.04", "--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  user_data = sent_user_data(emu);
  EXPECT_EQ(user_data.find("text/x-shellscript"), std::string::npos);
  ASSERT_EQ(emu.gm({"rm", "plain"}).status, 0);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace gm::testing::ec2
