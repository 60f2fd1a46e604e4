// The whole life of a digitalocean machine through the real CLI against the DigitalOcean
// emulator, checking what exists at "DigitalOcean" after each step.
#include "support/do_emulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

namespace gm::testing {
namespace {

std::vector<std::string> create_args(const std::string& name, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"create", "--driver", "digitalocean", name, "--yes"};
  if (std::find(extra.begin(), extra.end(), "--do-size") == extra.end()) {
    args.insert(args.end(), {"--do-size", "s-1vcpu-1gb"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string describe(const CaptureResult& r) {
  return "status " + std::to_string(r.status) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += s + "\n";
  }
  return out;
}

nlohmann::json only_droplet(DoEmulatorFixture& emu) {
  nlohmann::json out;
  int n = 0;
  const nlohmann::json state = emu.state();
  for (const auto& [id, d] : state["droplets"].items()) {
    if (d["deleted_at"].is_null()) {
      out = d;
      ++n;
    }
  }
  EXPECT_EQ(n, 1);
  return out;
}

nlohmann::json record_of(DoEmulatorFixture& emu, const std::string& name) {
  return nlohmann::json::parse(read_text(emu.home() / "machines" / name / "machine.json"));
}

TEST(DoLifecycle, CreateSshStopStartRmLeavesNothing) {
  DoEmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("life", {"--do-tag", "team:ml"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("$0.00893/h"), std::string::npos) << "price from /v2/sizes shown\n" << r.err;

  nlohmann::json rec = record_of(emu, "life");
  const std::string id = rec["id"];
  nlohmann::json d = only_droplet(emu);
  EXPECT_EQ(d["size_slug"], "s-1vcpu-1gb");
  EXPECT_EQ(d["image_id"], 170001001);  // ubuntu-24-04-x64 for a CPU size
  for (const std::string& tag : std::vector<std::string>{"gpumachine", "gpumachine:id:" + id,
                                                         "gpumachine:machine:life", "team:ml"}) {
    EXPECT_NE(std::find(d["tags"].begin(), d["tags"].end(), tag), d["tags"].end()) << tag;
  }
  EXPECT_EQ(rec["ssh"]["host"], d["public_ip"]);
  EXPECT_EQ(rec["ssh"]["user"], "root");

  // The ledger names every resource, all created.
  std::map<std::string, std::string> ledger;
  for (const auto& res : rec["resources"]) {
    ledger[res["kind"]] = res["status"];
  }
  EXPECT_EQ(ledger, (std::map<std::string, std::string>{{"droplet", "created"},
                                                        {"firewall", "created"},
                                                        {"ssh-key", "created"},
                                                        {"tag", "created"}}));

  // The registered key is the machine's own and is the droplet's login key.
  nlohmann::json s = emu.state();
  ASSERT_EQ(s["keys"].size(), 1u);
  const nlohmann::json key = s["keys"].begin().value();
  EXPECT_EQ(d["ssh_key_ids"], nlohmann::json::array({key["id"]}));
  EXPECT_EQ(key["public_key"].get<std::string>().substr(0, 80),
            read_text(emu.home() / "machines/life/id_ed25519.pub").substr(0, 80));

  CaptureResult ssh = emu.gm({"ssh", "life", "--", "echo", "hello"});
  ASSERT_EQ(ssh.status, 0) << describe(ssh);
  EXPECT_EQ(ssh.out, "hello\n");

  // stop tells the truth about billing, and the droplet is off.
  CaptureResult stop = emu.gm({"stop", "life"});
  ASSERT_EQ(stop.status, 0) << describe(stop);
  EXPECT_NE(stop.err.find("still billed"), std::string::npos) << stop.err;
  EXPECT_EQ(only_droplet(emu)["status"], "off");
  CaptureResult ls = emu.gm({"ls"});
  EXPECT_NE(ls.out.find("stopped"), std::string::npos) << ls.out;

  CaptureResult start = emu.gm({"start", "life"});
  ASSERT_EQ(start.status, 0) << describe(start);
  EXPECT_EQ(only_droplet(emu)["status"], "active");
  EXPECT_EQ(emu.gm({"ssh", "life", "--", "true"}).status, 0);

  CaptureResult rm = emu.gm({"rm", "life", "--yes"});
  ASSERT_EQ(rm.status, 0) << describe(rm);
  EXPECT_EQ(joined(emu.leaks()), "");
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/life"));
}

TEST(DoLifecycle, FirewallIsLeastOpenAndInPlaceBeforeTheDroplet) {
  DoEmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("fw"));
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json s = emu.state();
  ASSERT_EQ(s["firewalls"].size(), 1u);
  nlohmann::json fw = s["firewalls"].begin().value();
  const std::string id = record_of(emu, "fw")["id"];
  // Applied through the machine's id tag, which the droplet carries from its create on.
  EXPECT_EQ(fw["tags"], nlohmann::json::array({"gpumachine:id:" + id}));
  ASSERT_EQ(fw["inbound_rules"].size(), 1u);
  const nlohmann::json& in = fw["inbound_rules"][0];
  EXPECT_EQ(in["protocol"], "tcp");
  EXPECT_EQ(in["ports"], "22");
  EXPECT_EQ(in["sources"], nlohmann::json({{"addresses", {"127.0.0.1/32"}}}));
  EXPECT_FALSE(fw["outbound_rules"].empty());  // else apt, DNS and NTP break
  // The firewall came before the droplet.
  int fw_seq = -1;
  int droplet_seq = -1;
  for (const auto& c : emu.calls()) {
    if (c["method"] == "POST" && c["path"] == "/v2/firewalls" && c["status"] == 202) {
      fw_seq = c["seq"];
    }
    if (c["method"] == "POST" && c["path"] == "/v2/droplets" && c["status"] == 202) {
      droplet_seq = c["seq"];
    }
  }
  EXPECT_LT(fw_seq, droplet_seq);
  EXPECT_EQ(emu.gm({"rm", "fw", "--yes"}).status, 0);
}

TEST(DoLifecycle, HostKeyIsPinnedInUserDataBeforeTheFirstConnection) {
  DoEmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("pin"));
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json rec = record_of(emu, "pin");
  const std::string pin = rec["ssh"]["host_key"];
  ASSERT_TRUE(pin.starts_with("ssh-ed25519 ")) << pin;
  const std::string user_data = only_droplet(emu)["user_data"];
  EXPECT_TRUE(user_data.starts_with("#cloud-config")) << user_data.substr(0, 40);
  EXPECT_NE(user_data.find("ed25519_public: " + pin), std::string::npos);
  // The host serves exactly that key: a connection with another pin is refused.
  std::string wrong = pin;
  wrong[wrong.size() - 3] = wrong[wrong.size() - 3] == 'A' ? 'B' : 'A';
  rec["ssh"]["host_key"] = wrong;
  write_text(emu.home() / "machines/pin/machine.json", rec.dump());
  CaptureResult refused = emu.gm({"ssh", "pin", "--", "true"});
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.err.find("host key"), std::string::npos) << refused.err;
  rec["ssh"]["host_key"] = pin;
  write_text(emu.home() / "machines/pin/machine.json", rec.dump());
  EXPECT_EQ(emu.gm({"rm", "pin", "--yes"}).status, 0);
}

TEST(DoFaults, ThrottledCreateIsRetriedAfterRetryAfter) {
  DoEmulatorFixture emu;
  emu.fault({{"kind", "429"}, {"method", "POST"}, {"path", "/v2/droplets"}, {"retry_after", 1}});
  emu.fault({{"kind", "503"}, {"method", "GET"}, {"path", "/v2/sizes"}});
  CaptureResult r = emu.gm(create_args("thr"));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.count_calls("POST", "/v2/droplets"), 2);
  // The quote before create asks twice (the 503, then the answer), create's own look once.
  EXPECT_EQ(emu.count_calls("GET", "/v2/sizes"), 3);
  EXPECT_EQ(emu.gm({"rm", "thr", "--yes"}).status, 0);
  EXPECT_EQ(joined(emu.leaks()), "");
}

TEST(DoFaults, LostCreateAnswerAdoptsTheDropletInsteadOfMakingTwo) {
  DoEmulatorFixture emu;
  emu.fault({{"kind", "drop_after"}, {"method", "POST"}, {"path", "/v2/droplets"}});
  CaptureResult r = emu.gm(create_args("lost"));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.count_calls("POST", "/v2/droplets"), 1);
  only_droplet(emu);
  EXPECT_EQ(emu.gm({"rm", "lost", "--yes"}).status, 0);
  EXPECT_EQ(joined(emu.leaks()), "");
}

TEST(DoFaults, ServerErrorsOnCreateAreCheckedByTagThenRetried) {
  DoEmulatorFixture emu;
  emu.fault({{"kind", "503"}, {"method", "POST"}, {"path", "/v2/droplets"}, {"count", 2}});
  CaptureResult r = emu.gm(create_args("flaky", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.count_calls("POST", "/v2/droplets"), 3);
  only_droplet(emu);
  EXPECT_EQ(emu.gm({"rm", "flaky", "--yes"}).status, 0);
  EXPECT_EQ(joined(emu.leaks()), "");
}

TEST(DoFaults, CapacityMovesToTheSizesNextRegionAndGpuDropletsAreFound) {
  nlohmann::json capacity;
  capacity["capacity"]["tor1"]["gpu-h100x1-80gb"] =
      "The size you selected is temporarily unavailable because of server capacity";
  DoEmulatorFixture emu(capacity);
  CaptureResult r = emu.gm(create_args("gpu", {"--do-size", "gpu-h100x1-80gb"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json d = only_droplet(emu);
  EXPECT_EQ(d["region"], "nyc2");
  EXPECT_EQ(d["image_id"], 170002001);  // gpu-h100x1-base
  // The GPU droplet is left out of tag lists; ls still finds it (type=gpus).
  CaptureResult ls = emu.gm({"ls"});
  EXPECT_NE(ls.out.find("running"), std::string::npos) << ls.out;
  EXPECT_EQ(emu.gm({"rm", "gpu", "--yes"}).status, 0);
  EXPECT_EQ(joined(emu.leaks()), "");
}

TEST(DoFaults, NoCapacityAnywhereLeavesNothingBehind) {
  nlohmann::json capacity;
  capacity["capacity"]["*"]["*"] = "Size is not available in this region.";
  DoEmulatorFixture emu(capacity);
  CaptureResult r = emu.gm(create_args("full"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("no region has capacity"), std::string::npos) << r.err;
  EXPECT_EQ(joined(emu.leaks()), "");
}

TEST(DoToken, NeverInOutputOrFilesAndRefusedWithAHint) {
  DoEmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("tok", {"-v"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  CaptureResult ls = emu.gm({"ls", "-v", "--format", "json"});
  CaptureResult rm = emu.gm({"rm", "tok", "--yes", "-v"});
  ASSERT_EQ(rm.status, 0) << describe(rm);
  const std::string token = k_do_emulator_token;
  const std::string secret = token.substr(7);
  for (const CaptureResult* c : {&r, &ls, &rm}) {
    EXPECT_EQ(c->out.find(secret), std::string::npos);
    EXPECT_EQ(c->err.find(secret), std::string::npos);
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(emu.dir())) {
    if (entry.is_regular_file() && entry.path().filename() != "config.json" &&
        entry.path().filename() != "state.json") {
      EXPECT_EQ(read_text(entry.path()).find(secret), std::string::npos) << entry.path();
    }
  }
  CaptureResult bad = emu.gm(create_args("bad"), {{"DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_wrong"}});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("401"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("DIGITALOCEAN_ACCESS_TOKEN"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("dop_v1_wrong"), std::string::npos) << bad.err;
}

TEST(DoToken, ReadFromDoctlsConfigFile) {
  DoEmulatorFixture emu;
  std::filesystem::path config = emu.dir() / "home/.config/doctl/config.yaml";
  std::filesystem::create_directories(config.parent_path());
  write_text(config,
             "output: text\ncontext: work\naccess-token: dop_v1_personal\n"
             "auth-contexts:\n  work: " +
                 std::string(k_do_emulator_token) + "\n");
  CaptureResult r = emu.gm(create_args("doctl"), {{"DIGITALOCEAN_ACCESS_TOKEN", ""}});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.gm({"rm", "doctl", "--yes"}, {{"DIGITALOCEAN_ACCESS_TOKEN", ""}}).status, 0);
  EXPECT_EQ(joined(emu.leaks()), "");
}

}  // namespace
}  // namespace gm::testing
