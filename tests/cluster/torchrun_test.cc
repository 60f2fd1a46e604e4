// A real torchrun (Debian's python3-torch, CPU, gloo) across loopback "nodes" through
// cluster::fanout: the c10d rendezvous at rank 0's address from the rank environment, a gloo
// all_reduce whose sum every rank prints, and a failing rank that stops running torchrun jobs.
#include "cluster/fanout.h"
#include "cluster/loopback_cluster.h"
#include "support/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <mutex>

namespace gm::testing {
namespace {

bool have_torch() {
  return run_capture({"/usr/bin/python3", "-c", "import torch.distributed.run"}).status == 0;
}

#define SKIP_WITHOUT_TORCH()                                                                   \
  if (!have_torch()) {                                                                         \
    GTEST_SKIP() << "python3-torch is not installed (scripts/setup.sh installs it); skipping " \
                    "the real torchrun test";                                                  \
  }

/// torchrun 1.13 as the real-parts sheet says: underscore flags, --redirects 1 --tee 1 (Python
/// 3.11), c10d rendezvous at MASTER_ADDR:MASTER_PORT from the rank environment.
std::string torchrun(const std::string& nnodes, const std::string& env = {}) {
  return env + "exec /usr/bin/python3 -m torch.distributed.run --nnodes " + nnodes +
         " --nproc_per_node 1 --node_rank \"$NODE_RANK\" --rdzv_backend c10d"
         " --rdzv_endpoint \"$MASTER_ADDR:$MASTER_PORT\" --rdzv_id gm-test --max_restarts 0"
         " --redirects 1 --tee 1 " GM_SOURCE_DIR "/tests/cluster/allreduce.py";
}

struct Lines {
  std::mutex mutex;
  std::string text;
  cluster::LineSink sink() {
    return [this](cluster::Stream, std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex);
      text += line;
    };
  }
};

TEST(ClusterTorchrun, AllReduceAcrossThreeNodes) {
  SKIP_WITHOUT_TORCH();
  LoopbackCluster cluster(3);
  Lines lines;
  cluster::FanoutOptions options;
  options.command = torchrun("\"$NNODES\"");
  options.master_port = free_port(LoopbackCluster::address(0));
  options.on_line = lines.sink();
  cluster::FanoutResult result = cluster::fanout(cluster.nodes(), options);
  EXPECT_EQ(result.exit_status, 0) << lines.text;
  EXPECT_EQ(result.statuses, (std::vector<int>{0, 0, 0})) << lines.text;
  // c10d assigns the global ranks; each node prints one, and 1 + 2 + 3 = 6 everywhere.
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_NE(lines.text.find("rank " + std::to_string(rank) + " of 3: sum 6"), std::string::npos)
        << lines.text;
  }
  for (int node = 0; node < 3; ++node) {
    std::string prefix = "[" + std::to_string(node) + "] ";
    EXPECT_NE(lines.text.find(prefix), std::string::npos) << lines.text;
  }
}

TEST(ClusterTorchrun, AFailingRankStopsTheRunningTorchrunJob) {
  SKIP_WITHOUT_TORCH();
  // Nodes 0 and 1 run a 2-node torchrun job whose workers, after the all_reduce, stay alive;
  // node 2 fails with 3 once both workers are up.
  LoopbackCluster cluster(3);
  std::filesystem::path pids = cluster.dir() / "pids";
  std::filesystem::create_directories(pids);
  Lines lines;
  cluster::FanoutOptions options;
  options.command = "if [ \"$NODE_RANK\" = 2 ]; then while [ ! -e " + pids.string() +
                    "/0 ] || [ ! -e " + pids.string() +
                    "/1 ]; do sleep 0.1; done; echo failing >&2; exit 3; fi; " +
                    torchrun("2", "GM_TEST_PIDS=" + pids.string() + " ");
  options.master_port = free_port(LoopbackCluster::address(0));
  options.on_line = lines.sink();
  cluster::FanoutResult result = cluster::fanout(cluster.nodes(), options);

  EXPECT_EQ(result.exit_status, 3) << lines.text;
  EXPECT_EQ(result.failed_rank, 2);
  EXPECT_NE(result.statuses[0], 0);
  EXPECT_NE(result.statuses[1], 0);
  EXPECT_NE(lines.text.find("of 2: sum 3"), std::string::npos) << lines.text;
  std::vector<int> running;  // both workers and both torchrun agents
  for (const char* rank : {"0", "1"}) {
    std::istringstream in(read_text(pids / rank));
    for (int pid = 0; in >> pid;) {
      running.push_back(pid);
    }
  }
  ASSERT_EQ(running.size(), 4u);
  for (int pid : running) {
    EXPECT_TRUE(process_gone(pid)) << "pid " << pid << " still runs\n" << lines.text;
  }
}

}  // namespace
}  // namespace gm::testing
