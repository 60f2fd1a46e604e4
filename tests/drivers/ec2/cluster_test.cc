// Clusters on the EC2 emulator (`create NAME --nodes N`): one RunInstances for all nodes in a
// cluster placement group, a security group that admits itself, every node a real sshd on its own
// loopback address; ls, stop, start and rm act on all of them, and nothing leaks, also when the
// capacity is short or the create is interrupted.
#include "drivers/ec2/ec2_test_util.h"

#include <signal.h>

#include <set>

namespace gm::testing::ec2 {
namespace {

std::vector<std::string> cluster_args(const std::string& name, int nodes,
                                      std::vector<std::string> extra = {}) {
  extra.insert(extra.begin(), {"--nodes", std::to_string(nodes), "--wait", "ssh"});
  return create_args(name, extra);
}

nlohmann::json record_of(Ec2EmulatorFixture& emu, const std::string& name) {
  return nlohmann::json::parse(read_text(emu.home() / "machines" / name / "machine.json"));
}

TEST(Ec2Cluster, CreateUsesOnePlacedLaunchAndLsStopStartRmActOnEveryNode) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(cluster_args("c1", 3));
  ASSERT_EQ(r.status, 0) << describe(r);

  // One RunInstances, MinCount = MaxCount = 3: three instances of one reservation and token, in
  // one zone and the cluster's placement group.
  EXPECT_EQ(emu.count_calls("RunInstances"), 1);
  std::vector<nlohmann::json> live = emu.live_instances();
  ASSERT_EQ(live.size(), 3u);
  nlohmann::json region = emu.state()["regions"]["us-east-1"];
  ASSERT_EQ(region["placement_groups"].size(), 1u);
  const std::string pg_name = region["placement_groups"].begin().key();
  const nlohmann::json pg = region["placement_groups"].begin().value();
  EXPECT_EQ(pg["strategy"], "cluster");
  std::set<std::string> reservations, tokens, zones, groups;
  for (const nlohmann::json& i : live) {
    reservations.insert(i["reservationId"].get<std::string>());
    tokens.insert(i["clientToken"].get<std::string>());
    zones.insert(i["availabilityZone"].get<std::string>());
    EXPECT_EQ(i["placementGroup"], pg_name);
    ASSERT_EQ(i["groups"].size(), 1u);
    groups.insert(i["groups"][0].get<std::string>());
  }
  EXPECT_EQ(reservations.size(), 1u);
  EXPECT_EQ(tokens.size(), 1u);
  EXPECT_EQ(zones.size(), 1u);
  ASSERT_EQ(groups.size(), 1u);
  // The group admits itself (all traffic between the nodes) and SSH from the caller's /32 only.
  nlohmann::json sg = region["security_groups"][*groups.begin()];
  bool self_rule = false;
  for (const nlohmann::json& rule : sg["ingress"]) {
    if (rule.contains("cidr")) {
      EXPECT_EQ(rule["cidr"], "127.0.0.1/32") << rule.dump();
    }
    self_rule = self_rule || (rule.value("groupId", "") == *groups.begin() &&
                              rule.value("protocol", "") == "-1");
  }
  EXPECT_TRUE(self_rule) << sg.dump(2);

  // The record: one cluster of three nodes, each with its own address and the pinned key.
  nlohmann::json rec = record_of(emu, "c1");
  ASSERT_EQ(rec["cluster"]["nodes"].size(), 3u);
  std::set<std::string> hosts;
  for (const nlohmann::json& node : rec["cluster"]["nodes"]) {
    hosts.insert(node["host"].get<std::string>());
    EXPECT_EQ(node["host_key"], rec["ssh"]["host_key"]);
    EXPECT_EQ(node["private_ip"].get<std::string>().substr(0, 4), "127.");
  }
  EXPECT_EQ(hosts.size(), 3u);
  r = emu.gm({"ssh", "c1", "--", "true"});
  EXPECT_EQ(r.status, 0) << describe(r);

  r = emu.gm({"ls", "--format", "json"});
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["state"], "running");
  ASSERT_EQ(rows[0]["nodes"].size(), 3u);
  for (const nlohmann::json& node : rows[0]["nodes"]) {
    EXPECT_EQ(node["state"], "running");
  }
  r = emu.gm({"ls"});
  EXPECT_NE(r.out.find("c1/2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3x t3.micro"), std::string::npos) << r.out;

  r = emu.gm({"stop", "c1"});
  ASSERT_EQ(r.status, 0) << describe(r);
  for (const nlohmann::json& i : emu.live_instances()) {
    EXPECT_EQ(i["state"], "stopped");
  }
  r = emu.gm({"start", "c1"});
  ASSERT_EQ(r.status, 0) << describe(r);
  for (const nlohmann::json& i : emu.live_instances()) {
    EXPECT_EQ(i["state"], "running");
  }
  r = emu.gm({"ls", "--format", "json"});
  rows = nlohmann::json::parse(r.out);
  for (const nlohmann::json& node : rows.at(0)["nodes"]) {
    EXPECT_EQ(node["state"], "running") << r.out;
  }
  r = emu.gm({"ssh", "c1", "--", "true"});
  EXPECT_EQ(r.status, 0) << describe(r);

  r = emu.gm({"rm", "c1"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("deleted placement group"), std::string::npos) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Cluster, NodesOfATypeWithEfaGetAnEfaInterface) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(cluster_args(
      "efa", 2, {"--ec2-instance-type", "g4dn.8xlarge", "--ec2-image", "ubuntu-24.04"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  std::vector<nlohmann::json> live = emu.live_instances();
  ASSERT_EQ(live.size(), 2u);
  for (const nlohmann::json& i : live) {
    EXPECT_TRUE(i.value("efa", false)) << i.dump(2);
    EXPECT_FALSE(i.value("placementGroup", "").empty()) << i.dump(2);
  }
  r = emu.gm({"rm", "efa"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Cluster, TooLittleCapacityLaunchesNothingAndLeaksNothing) {
  // Two t3.micro per zone: no zone can launch three.
  Ec2EmulatorFixture emu(nlohmann::json{{"capacity_limit", {{"*", {{"t3.micro", 2}}}}}});
  CaptureResult r = emu.gm(cluster_args("short", 3));
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("InsufficientInstanceCapacity"), std::string::npos) << r.err;
  EXPECT_GE(emu.count_calls("RunInstances"), 1);
  EXPECT_TRUE(emu.state()["regions"]["us-east-1"]["instances"].empty());
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/short/machine.json"));
}

TEST(Ec2Cluster, ADriverThatCannotPlaceMachinesRefusesNodes) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(
      {"create", "--driver", "generic", "g", "--generic-ip-address", "127.0.0.1", "--nodes", "2"});
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("generic driver cannot create clusters"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--driver ec2"), std::string::npos) << r.err;
  r = emu.gm(cluster_args("one", 1));
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("2 to 64 nodes"), std::string::npos) << r.err;
  EXPECT_EQ(emu.count_calls("RunInstances"), 0);
}

TEST(Ec2Cluster, CtrlCWhileNodesBootLeavesNothingAfterRm) {
  Ec2EmulatorFixture emu(nlohmann::json{{"delays", {{"pending", 3.0}}}});
  std::unique_ptr<Process> p = emu.gm_async(cluster_args("intr", 2));
  ASSERT_TRUE(wait_for_call(emu, *p, "RunInstances"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(p->pid(), SIGINT);
  EXPECT_EQ(p->wait(), 130);
  nlohmann::json rec = record_of(emu, "intr");
  EXPECT_TRUE(rec["progress"]["incomplete"].get<bool>());
  EXPECT_EQ(rec["cluster"]["nodes"].size(), 2u);
  CaptureResult r = emu.gm({"rm", "intr"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2
