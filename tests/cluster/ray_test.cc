// `gpumachine ray` end to end on the EC2 emulator: a 3-node cluster whose sessions find the Ray
// stand-in (tests/cluster/ray_standin.sh, following Ray's documented CLI) first on PATH. The head
// starts on node 0 with its private address, the workers join it, the dashboard (the stand-in's
// HTTP server on node 0's 127.0.0.1) is reached through the printed local URL, and --stop runs
// `ray stop` everywhere and ends the forward; a plain machine and nodes without Ray are refused.
#include "cli/machine_env.h"
#include "drivers/ec2/ec2_test_util.h"
#include "support/process.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <sstream>

namespace gm::testing::ec2 {
namespace {

namespace fs = std::filesystem;

/// The stand-in's state folder; whatever dashboard server it still records is ended by its pid
/// when the test ends (a failed assertion before --stop leaves none running).
struct StandinState {
  TempDir dir{"gm-ray-state"};
  ~StandinState() {
    for (const fs::directory_entry& e : fs::directory_iterator(dir.path())) {
      if (e.path().extension() == ".pid") {
        ::kill(std::stoi(read_text(e.path())), SIGTERM);
      }
    }
  }
};

/// The last line the stand-in recorded for the node with this instance id.
std::string last_call(const fs::path& dir, const std::string& id) {
  std::istringstream in(read_text(dir / (id + ".argv")));
  std::string line;
  std::string last;
  while (std::getline(in, line)) {
    last = line;
  }
  return last;
}

/// The value after "prefix" on the line of text that starts with it.
std::string line_value(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(prefix)) {
      return line.substr(prefix.size());
    }
  }
  return "";
}

TEST(ClusterRay, HeadOnNodeZeroWorkersOnTheOthersDashboardForwarded) {
  StandinState state;
  TempDir bin("gm-ray-bin");
  fs::copy_file(fs::path(GM_SOURCE_DIR) / "tests/cluster/ray_standin.sh", bin.path() / "ray");
  fs::permissions(bin.path() / "ray", fs::perms::owner_all);
  Ec2EmulatorFixture emu(
      nlohmann::json{{"instance_env",
                      {{"PATH", bin.path().string() + ":/usr/local/bin:/usr/bin:/bin"},
                       {"RAY_STANDIN_DIR", state.dir.path().string()}}}});
  CaptureResult r = emu.gm(create_args("c1", {"--nodes", "3", "--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json nodes =
      nlohmann::json::parse(read_text(emu.home() / "machines/c1/machine.json"))["cluster"]["nodes"];
  ASSERT_EQ(nodes.size(), 3U);
  std::string master = nodes[0]["private_ip"];

  // Node 0 is this machine: the forward's local port must differ from the dashboard's.
  int dashboard = free_port();
  int local = free_port();
  r = emu.gm({"ray", "c1", "--port", "6390", "--dashboard-port", std::to_string(dashboard),
              "--local-port", std::to_string(local), "--background"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(last_call(state.dir.path(), nodes[0]["id"]),
            "start --head --port 6390 --node-ip-address " + master +
                " --dashboard-host 127.0.0.1 --dashboard-port " + std::to_string(dashboard) +
                " --disable-usage-stats");
  for (int rank : {1, 2}) {
    EXPECT_EQ(last_call(state.dir.path(), nodes[rank]["id"]),
              "start --address " + master + ":6390 --node-ip-address " +
                  nodes[rank]["private_ip"].get<std::string>() + " --disable-usage-stats");
  }
  EXPECT_EQ(line_value(r.out, "cluster address "),
            master + ":6390  (ray.init(address=\"" + master + ":6390\") on the nodes)")
      << describe(r);
  EXPECT_EQ(line_value(r.out, "RAY_ADDRESS="), "http://127.0.0.1:" + std::to_string(local) +
                                                   "  (for `ray job submit` on this computer)")
      << describe(r);
  EXPECT_NE(r.out.find("http://127.0.0.1:" + std::to_string(local) + "/\n"), std::string::npos)
      << describe(r);

  // The dashboard through the forward: the stand-in serves its state folder.
  HttpReply page = http_get(local, "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find(nodes[0]["id"].get<std::string>() + ".argv"), std::string::npos)
      << page.body;

  int server =
      std::stoi(read_text(state.dir.path() / (nodes[0]["id"].get<std::string>() + ".pid")));
  r = emu.gm({"ray", "c1", "--stop"});
  EXPECT_EQ(r.status, 0) << describe(r);
  for (int rank : {0, 1, 2}) {
    EXPECT_EQ(last_call(state.dir.path(), nodes[rank]["id"]), "stop");
  }
  // The stand-in's dashboard server is gone (or a zombie awaiting its reaper) and so is the
  // forward.
  EXPECT_TRUE(eventually([&] {
    std::string stat = CliMachine::proc_file(server, "stat");
    return stat.empty() || stat.find(") Z ") != std::string::npos;
  }));
  EXPECT_EQ(http_get(dashboard, "/").status, 0);
  EXPECT_EQ(http_get(local, "/").status, 0);

  r = emu.gm({"rm", "c1"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(ClusterRay, RefusesAPlainMachineAndNodesWithoutRay) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("one", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm({"ray", "one"});
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("machine 'one' is not a cluster"), std::string::npos) << describe(r);

  r = emu.gm(create_args("c2", {"--nodes", "2", "--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  r = emu.gm({"ray", "c2", "--dashboard-port", std::to_string(free_port())});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("machine 'c2' node 0: cannot start the Ray head"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("--image"), std::string::npos) << describe(r);

  r = emu.gm({"rm", "one", "c2"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2
