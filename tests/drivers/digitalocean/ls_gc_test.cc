// `ls` of digitalocean machines (one paginated listing per home tag) and `gc` of what no local
// record owns, scoped to this home, against the DigitalOcean emulator.
#include "support/do_emulator.h"

#include <gtest/gtest.h>

#include <set>

namespace gm::testing {
namespace {

std::string describe(const CaptureResult& r) {
  return "status " + std::to_string(r.status) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

std::vector<std::string> create_args(const std::string& name) {
  return {"create",      "--driver", "do",     name,     "--do-size",
          "s-1vcpu-1gb", "--yes",    "--wait", "running"};
}

TEST(DoLs, OneListingPerHomeTag) {
  DoEmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  for (const char* name : {"a1", "a2", "a3"}) {
    CaptureResult r = emu.gm(create_args(name));
    ASSERT_EQ(r.status, 0) << describe(r);
  }
  int before = emu.count_calls("GET", "/v2/droplets");
  int sizes_before = emu.count_calls("GET", "/v2/sizes");
  CaptureResult ls = emu.gm({"ls", "--format", "json"});
  ASSERT_EQ(ls.status, 0) << describe(ls);
  // One tag listing and one GPU listing for the three machines, not a call per machine.
  EXPECT_EQ(emu.count_calls("GET", "/v2/droplets") - before, 2);
  EXPECT_EQ(emu.count_calls("GET", "/v2/sizes"), sizes_before);  // prices recorded at create
  for (const auto& row : nlohmann::json::parse(ls.out)) {
    EXPECT_EQ(row["state"], "running") << row.dump();
    EXPECT_NE(row.dump().find("0.00893"), std::string::npos) << row.dump();
  }
  for (const char* name : {"a1", "a2", "a3"}) {
    EXPECT_EQ(emu.gm({"rm", name, "--yes"}).status, 0);
  }
  EXPECT_TRUE(emu.leaks().empty());
}

TEST(DoGc, FindsAndDeletesWhatNoRecordOwnsInThisHomeOnly) {
  DoEmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("keep"));
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm(create_args("lost"));
  ASSERT_EQ(r.status, 0) << describe(r);
  std::filesystem::remove_all(emu.home() / "machines/lost");  // the record is gone

  r = emu.gm({"gc", "--format", "json"});
  ASSERT_EQ(r.status, 0) << describe(r);
  const nlohmann::json young = nlohmann::json::parse(r.out);
  for (const auto& o : young["orphans"]) {
    ADD_FAILURE() << "young resources are kept, not orphans: " << o.dump();
  }
  r = emu.gm({"gc", "--format", "json", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  std::set<std::string> kinds;
  const nlohmann::json listed = nlohmann::json::parse(r.out);
  for (const auto& o : listed["orphans"]) {
    EXPECT_EQ(o["machine"], "lost") << o.dump();
    kinds.insert(o["kind"]);
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"droplet", "firewall", "ssh-key"})) << r.out;

  // Another home sees them, but keeps them.
  std::filesystem::path other = emu.dir() / "otherhome";
  std::filesystem::create_directories(other);
  std::filesystem::permissions(other, std::filesystem::perms::owner_all);
  r = emu.gm({"gc", "--format", "json", "--min-age", "0s"}, {{"GPUMACHINE_HOME", other.string()}});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(nlohmann::json::parse(r.out)["orphans"].empty()) << r.out;

  r = emu.gm({"--yes", "gc", "--delete", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.leaks().size(), 3u);  // keep's droplet, firewall and key
  r = emu.gm({"gc", "--format", "json", "--min-age", "0s"});
  EXPECT_TRUE(nlohmann::json::parse(r.out)["orphans"].empty()) << r.out;
  EXPECT_EQ(emu.gm({"rm", "keep", "--yes"}).status, 0);
  EXPECT_TRUE(emu.leaks().empty());
}

TEST(DoSshAllow, ReplacesTheFirewallsOnlySource) {
  DoEmulatorFixture emu(nlohmann::json{{"run_sshd", false}});
  CaptureResult r = emu.gm(create_args("wall"));
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm({"ssh-allow", "wall", "--cidr", "203.0.113.0/24"});
  ASSERT_EQ(r.status, 0) << describe(r);
  const nlohmann::json state = emu.state();
  ASSERT_EQ(state["firewalls"].size(), 1u);
  const nlohmann::json& fw = state["firewalls"].begin().value();
  ASSERT_EQ(fw["inbound_rules"].size(), 1u);
  EXPECT_EQ(fw["inbound_rules"][0]["ports"], "22");
  EXPECT_EQ(fw["inbound_rules"][0]["sources"]["addresses"],
            nlohmann::json::array({"203.0.113.0/24"}));
  EXPECT_FALSE(fw["outbound_rules"].empty());  // PUT replaces all: outbound is sent again
  EXPECT_EQ(fw["tags"].size(), 1u);
  EXPECT_EQ(emu.gm({"rm", "wall", "--yes"}).status, 0);
  EXPECT_TRUE(emu.leaks().empty());
}

}  // namespace
}  // namespace gm::testing
