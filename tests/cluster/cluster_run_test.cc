// End to end on the EC2 emulator: `create c1 --nodes 3` (each node a real sshd on its own
// loopback address, private addresses on loopback too), `run c1 --nodes all -- torchrun ...`
// with the project synced to every node and a real gloo all_reduce across them, a failing rank's
// status as run's, then `rm` with nothing leaked.
#include "drivers/ec2/ec2_test_util.h"
#include "support/process.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace gm::testing::ec2 {
namespace {

namespace fs = std::filesystem;

bool have_torch() {
  return run_capture({"/usr/bin/python3", "-c", "import torch.distributed.run"}).status == 0;
}

TEST(ClusterRun, TorchrunOnEveryNodeOfAnEmulatedCluster) {
  if (!have_torch()) {
    GTEST_SKIP() << "python3-torch is not installed (scripts/setup.sh installs it); skipping the "
                    "real torchrun test";
  }
  TempDir remote_home("gm-cluster-home");
  Ec2EmulatorFixture emu(nlohmann::json{{"instance_env", {{"HOME", remote_home.path().string()}}}});
  CaptureResult r = emu.gm(create_args("c1", {"--nodes", "3", "--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);

  // The project: the worker and the per-node namespace launcher, synced to every node.
  TempDir project("gm-cluster-project");
  for (const char* file : {"allreduce.py", "as_node.sh"}) {
    fs::copy_file(fs::path(GM_SOURCE_DIR) / "tests/cluster" / file, project.path() / file);
  }
  std::string port = std::to_string(free_port());
  r = emu.gm({"run", "c1", "--nodes", "all", "--dir", project.path().string(), "--master-port",
              port, "-e", "GM_TEST_GREETING=hello there", "--",
              "test \"$GM_TEST_GREETING\" = 'hello there' && sh as_node.sh /usr/bin/python3 -m "
              "torch.distributed.run --nnodes \"$NNODES\" --nproc_per_node 1 --node_rank "
              "\"$NODE_RANK\" --rdzv_backend c10d --rdzv_endpoint \"$MASTER_ADDR:$MASTER_PORT\" "
              "--rdzv_id gm-test --max_restarts 0 --redirects 1 --tee 1 allreduce.py"});
  EXPECT_EQ(r.status, 0) << describe(r);
  // torchrun passes each worker's lines on (--tee) on stdout or stderr: every rank's sum.
  std::string output = r.out + r.err;
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_NE(output.find("rank " + std::to_string(rank) + " of 3: sum 6"), std::string::npos)
        << describe(r);
    EXPECT_NE(output.find("[" + std::to_string(rank) + "] "), std::string::npos) << describe(r);
  }
  // MASTER_ADDR is node 0's private address.
  nlohmann::json rec = nlohmann::json::parse(read_text(emu.home() / "machines/c1/machine.json"));
  std::string master = rec["cluster"]["nodes"][0]["private_ip"];
  EXPECT_NE(r.err.find("MASTER_ADDR " + master), std::string::npos) << describe(r);

  // The first failing rank's status is run's; the others are stopped.
  r = emu.gm({"run", "c1", "--nodes", "all", "--dir", project.path().string(), "--",
              "if [ \"$NODE_RANK\" = 1 ]; then sleep 1; exit 3; fi; exec sleep 600"});
  EXPECT_EQ(r.status, 3) << describe(r);
  EXPECT_NE(r.err.find("node 1 failed with exit status 3"), std::string::npos) << describe(r);

  r = emu.gm({"rm", "c1"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(ClusterRun, ProbeClusterAllReducesAcrossEveryNode) {
  if (!have_torch()) {
    GTEST_SKIP() << "python3-torch is not installed (scripts/setup.sh installs it); skipping the "
                    "real all-reduce";
  }
  // gloo binds to the interface named here (every emulated node is this machine: loopback); a
  // 1 MiB tensor.
  Ec2EmulatorFixture emu(nlohmann::json{
      {"instance_env", {{"GLOO_SOCKET_IFNAME", "lo"}, {"GM_PROBE_BYTES", "1048576"}}}});
  CaptureResult r = emu.gm(create_args("c1", {"--nodes", "3", "--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  std::string port = std::to_string(free_port());
  r = emu.gm({"probe", "c1", "--cluster", "--python", "/usr/bin/python3", "--master-port", port,
              "--format", "json"});
  EXPECT_EQ(r.status, 0) << describe(r);
  nlohmann::json doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["backend"], "gloo") << r.out;
  EXPECT_EQ(doc["nodes"], 3) << r.out;
  EXPECT_TRUE(doc["correct"].get<bool>()) << r.out;
  EXPECT_EQ(doc["verdict"], "ok") << r.out;
  EXPECT_GT(doc["busbw_gbps"].get<double>(), 0) << r.out;
  // Without EFA (gloo's TCP) --expect-efa fails the probe.
  r = emu.gm({"probe", "c1", "--cluster", "--python", "/usr/bin/python3", "--master-port", port,
              "--expect-efa"});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.out.find("EFA did not carry it"), std::string::npos) << describe(r);
  r = emu.gm({"rm", "c1"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(ClusterRun, NodesAllNeedsACluster) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("one", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  TempDir project("gm-cluster-project");
  r = emu.gm({"run", "one", "--nodes", "all", "--dir", project.path().string(), "--", "true"});
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("is not a cluster"), std::string::npos) << describe(r);
  r = emu.gm({"rm", "one"});
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2
