// `ls` of ec2 machines (one batched call per region, regions in parallel) and `gc` of resources
// no record owns.
#include "drivers/ec2/ec2_test_util.h"
#include "util/fs.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

namespace gm::testing::ec2 {
namespace {

TEST(Ec2Ls, OneDescribeInstancesPerRegion) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  for (const auto& [name, region] : std::vector<std::pair<std::string, std::string>>{
           {"a1", "us-east-1"}, {"a2", "us-east-1"}, {"b1", "eu-west-1"}}) {
    CaptureResult r = emu.gm(create_args(name, {"--ec2-region", region, "--wait", "running"}));
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  CaptureResult r = emu.gm({"stop", "a2"});
  ASSERT_EQ(r.status, 0) << describe(r);
  int before = emu.count_calls("DescribeInstances");
  r = emu.gm({"ls", "--format", "json"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.count_calls("DescribeInstances") - before, 2);  // one per region
  nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 3u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& row : rows) {
    by_name[row["name"]] = row;
  }
  EXPECT_EQ(by_name["a1"]["state"], "running");
  EXPECT_EQ(by_name["a2"]["state"], "stopped");
  EXPECT_EQ(by_name["b1"]["region"], "eu-west-1");
  EXPECT_FALSE(by_name["a1"]["uptime"].is_null());
  EXPECT_EQ(by_name["a1"]["instance_type"], "t3.micro");

  r = emu.gm({"ls"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("TYPE"), std::string::npos);
  EXPECT_NE(r.out.find("t3.micro"), std::string::npos);

  // --cached makes no calls.
  int calls = static_cast<int>(emu.calls()["calls"].size());
  r = emu.gm({"ls", "--cached"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(static_cast<int>(emu.calls()["calls"].size()), calls);

  // A region that does not answer in time is reported, not waited for.
  emu.fault({{"action", "DescribeInstances"},
             {"kind", "latency"},
             {"latency_ms", 3000},
             {"region", "eu-west-1"},
             {"count", 5}});
  auto start = std::chrono::steady_clock::now();
  r = emu.gm({"ls", "--format", "json", "--timeout", "1"});
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.status, 0) << describe(r);
  // Well under the 3 s answer, with room for a loaded machine.
  EXPECT_LT(took, std::chrono::milliseconds(2900));
  for (const auto& row : nlohmann::json::parse(r.out)) {
    if (row["name"] == "b1") {
      EXPECT_EQ(row["state"], "unknown");
      EXPECT_TRUE(row.contains("error"));
    } else {
      EXPECT_NE(row["state"], "unknown");
    }
  }
  emu.clear_faults();
  for (const char* name : {"a1", "a2", "b1"}) {
    r = emu.gm({"rm", name});
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
  EXPECT_TRUE(emu.leaks("eu-west-1").empty()) << lines(emu.leaks("eu-west-1"));
}

/// EC2 takes at most 200 filter values per call (FilterLimitExceeded beyond): 200 machines of one
/// region take one DescribeInstances, 201 take two.
TEST(Ec2Ls, BatchesInstanceIdsToTheFilterValueLimit) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("m0", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::filesystem::path machines = emu.home() / "machines";
  nlohmann::json record = nlohmann::json::parse(util::read_file(machines / "m0" / "machine.json"));
  auto add_records = [&](int first, int last) {
    for (int i = first; i < last; ++i) {
      nlohmann::json copy = record;
      copy["name"] = "m" + std::to_string(i);
      char id[32];
      std::snprintf(id, sizeof id, "i-%017x", i);
      copy["driver_config"]["instance_id"] = id;  // unknown to EC2: listed as terminated
      util::make_private_dir(machines / copy["name"].get<std::string>());
      util::write_file_atomic(machines / copy["name"].get<std::string>() / "machine.json",
                              copy.dump());
    }
  };
  auto ls_calls = [&](std::map<std::string, std::string>* states) {
    int before = emu.count_calls("DescribeInstances");
    CaptureResult ls = emu.gm({"ls", "--format", "json"});
    EXPECT_EQ(ls.status, 0) << describe(ls);
    for (const auto& row : nlohmann::json::parse(ls.out)) {
      (*states)[row["name"]] = row["state"];
    }
    return emu.count_calls("DescribeInstances") - before;
  };
  add_records(1, 200);
  std::map<std::string, std::string> states;
  EXPECT_EQ(ls_calls(&states), 1);
  EXPECT_EQ(states.size(), 200u);
  EXPECT_EQ(states["m0"], "running");
  EXPECT_EQ(states["m199"], "terminated");
  add_records(200, 201);
  states.clear();
  EXPECT_EQ(ls_calls(&states), 2);
  EXPECT_EQ(states["m0"], "running");
  EXPECT_EQ(states["m200"], "terminated");
  for (int i = 1; i < 201; ++i) {
    std::filesystem::remove_all(machines / ("m" + std::to_string(i)));
  }
  r = emu.gm({"rm", "m0"});
  ASSERT_EQ(r.status, 0) << describe(r);
}

TEST(Ec2Gc, FindsAndDeletesWhatNoRecordOwns) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("keep", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm(create_args("lost", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  std::filesystem::remove_all(emu.home() / "machines/lost");  // the record is gone

  r = emu.gm({"gc", "--format", "json", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json out = nlohmann::json::parse(r.out);
  std::set<std::string> kinds;
  for (const auto& o : out["orphans"]) {
    EXPECT_EQ(o["machine"], "lost");
    kinds.insert(o["kind"]);
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"instance", "volume", "security-group", "key-pair"}));
  EXPECT_EQ(emu.live_instances().size(), 2u);  // listing deletes nothing

  r = emu.gm({"--yes", "gc", "--delete", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.live_instances().size(), 1u);
  r = emu.gm({"gc", "--format", "json", "--min-age", "0s"});
  EXPECT_TRUE(nlohmann::json::parse(r.out)["orphans"].empty()) << r.out;
  r = emu.gm({"rm", "keep"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Rm, ForceListsWhatWasLeft) {
  Ec2EmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("stuck", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  emu.fault({{"action", "TerminateInstances"},
             {"kind", "UnauthorizedOperation"},
             {"count", 10},
             {"status", 403}});
  r = emu.gm({"rm", "stuck"});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_TRUE(std::filesystem::exists(emu.home() / "machines/stuck"));
  r = emu.gm({"--format", "json", "rm", "--force", "stuck"});
  EXPECT_EQ(r.status, 1) << describe(r);  // something bills on: not a success
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/stuck"));
  std::set<std::string> left;
  nlohmann::json out = nlohmann::json::parse(r.out);
  for (const auto& l : out.at(0)["left_behind"]) {
    left.insert(l.get<std::string>().substr(0, l.get<std::string>().find(' ')));
  }
  // The key pair could still be deleted (an instance does not need it once launched).
  EXPECT_EQ(left, (std::set<std::string>{"instance", "security-group"})) << r.out;
  emu.clear_faults();
  r = emu.gm({"--yes", "gc", "--delete", "--region", "us-east-1", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2
