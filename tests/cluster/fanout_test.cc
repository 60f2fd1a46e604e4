// cluster::fanout on real sshd "nodes" on loopback: the rank environment, lines prefixed by rank,
// the first failing rank's status as the result with the other ranks' process groups stopped, and
// Ctrl-C stopping every rank.
#include "cluster/fanout.h"
#include "cluster/loopback_cluster.h"
#include "gm/error.h"
#include "util/interrupt.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

namespace gm::testing {
namespace {

using cluster::Stream;

struct Collected {
  std::mutex mutex;
  std::vector<std::string> out;
  std::vector<std::string> err;
  cluster::LineSink sink() {
    return [this](Stream stream, std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex);
      (stream == Stream::out ? out : err).emplace_back(line);
    };
  }
};

bool contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

/// Waits (bounded, generously) until every pid is gone; true when they all are.
bool all_gone(const std::vector<int>& pids) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    if (std::all_of(pids.begin(), pids.end(), process_gone)) {
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

/// The pids a rank's command wrote to DIR/pids.RANK: the command's shell and a background child.
std::vector<int> read_pids(const std::filesystem::path& dir, int ranks, int skip_rank) {
  std::vector<int> pids;
  for (int rank = 0; rank < ranks; ++rank) {
    if (rank == skip_rank) {
      continue;
    }
    std::istringstream in(read_text(dir / ("pids." + std::to_string(rank))));
    for (int pid = 0; in >> pid;) {
      pids.push_back(pid);
    }
  }
  return pids;
}

/// Ranks other than \a failing write their pids and sleep (a grandchild too); the failing rank,
/// once all of them are there, exits 3.
std::string sleepers_and_a_failure(const std::filesystem::path& dir, int ranks, int failing) {
  std::string d = dir.string();
  std::string wait_all;
  for (int rank = 0; rank < ranks; ++rank) {
    wait_all += "while [ ! -s " + d + "/pids." + std::to_string(rank) + " ]; do sleep 0.05; done; ";
  }
  return "if [ \"$NODE_RANK\" = " + std::to_string(failing) + " ]; then echo > " + d +
         "/pids.$NODE_RANK; " + wait_all +
         "echo failing >&2; exit 3; fi; sleep 1000 & echo $$ $! > " + d +
         "/pids.tmp.$NODE_RANK && mv " + d + "/pids.tmp.$NODE_RANK " + d + "/pids.$NODE_RANK; wait";
}

TEST(ClusterFanout, RanksAreZeroToNMinusOneEachOnce) {
  auto node = [](int rank, std::string ip) {
    cluster::Node n;
    n.rank = rank;
    n.private_ip = std::move(ip);
    n.gpus = 8;
    return n;
  };
  std::vector<cluster::Node> nodes = {node(1, "10.0.0.6"), node(0, "10.0.0.5")};
  EXPECT_EQ(
      cluster::rank_environment(nodes, nodes[0], 29500),
      (std::vector<std::string>{"NODE_RANK=1", "NNODES=2", "NODE_IPS=10.0.0.5,10.0.0.6",
                                "MASTER_ADDR=10.0.0.5", "MASTER_PORT=29500", "GPUS_PER_NODE=8"}));
  cluster::FanoutOptions options;
  options.command = "true";
  for (const std::vector<cluster::Node>& bad :
       {std::vector<cluster::Node>{}, std::vector<cluster::Node>{node(0, "a"), node(0, "b")},
        std::vector<cluster::Node>{node(1, "a")}}) {
    EXPECT_THROW(cluster::fanout(bad, options), UsageError);
  }
}

TEST(ClusterFanout, EveryRankGetsItsEnvironmentAndItsLinesArePrefixed) {
  LoopbackCluster cluster(3);
  Collected lines;
  cluster::FanoutOptions options;
  options.command =
      "echo \"$NODE_RANK $NNODES $NODE_IPS $MASTER_ADDR $MASTER_PORT $GPUS_PER_NODE "
      "$NCCL_SOCKET_IFNAME $(hostname)\"; echo to-stderr >&2; printf 'no newline'";
  options.master_port = 29511;
  options.on_line = lines.sink();
  cluster::FanoutResult result = cluster::fanout(cluster.nodes(2), options);

  EXPECT_EQ(result.exit_status, 0);
  EXPECT_FALSE(result.failed_rank);
  EXPECT_EQ(result.statuses, (std::vector<int>{0, 0, 0}));
  std::string ips = "127.0.1.1,127.0.2.1,127.0.3.1";
  for (int rank = 0; rank < 3; ++rank) {
    std::string r = "[" + std::to_string(rank) + "] ";
    EXPECT_TRUE(contains(lines.out, r + std::to_string(rank) + " 3 " + ips +
                                        " 127.0.1.1 29511 2 lo node" + std::to_string(rank) + "\n"))
        << ::testing::PrintToString(lines.out);
    EXPECT_TRUE(contains(lines.out, r + "no newline\n")) << ::testing::PrintToString(lines.out);
    EXPECT_TRUE(contains(lines.err, r + "to-stderr\n")) << ::testing::PrintToString(lines.err);
  }
}

TEST(ClusterFanout, AnEndlessLineComesInBoundedPieces) {
  LoopbackCluster cluster(1);
  Collected lines;
  cluster::FanoutOptions options;
  options.command = "head -c 150000 /dev/zero | tr '\\0' x";
  options.on_line = lines.sink();
  EXPECT_EQ(cluster::fanout(cluster.nodes(), options).exit_status, 0);
  ASSERT_EQ(lines.out.size(), 3u);
  EXPECT_EQ(lines.out[0], "[0] " + std::string(64 * 1024, 'x') + "\n");
  EXPECT_EQ(lines.out[2], "[0] " + std::string(150000 - 2 * 64 * 1024, 'x') + "\n");
}

TEST(ClusterFanout, TheFirstFailingRankDecidesAndTheOthersAreStopped) {
  LoopbackCluster cluster(3);
  Collected lines;
  cluster::FanoutOptions options;
  options.command = sleepers_and_a_failure(cluster.dir(), 3, 1);
  options.on_line = lines.sink();
  cluster::FanoutResult result = cluster::fanout(cluster.nodes(), options);

  EXPECT_EQ(result.exit_status, 3);
  EXPECT_EQ(result.failed_rank, 1);
  EXPECT_EQ(result.statuses, (std::vector<int>{128 + SIGTERM, 3, 128 + SIGTERM}));
  EXPECT_TRUE(contains(lines.err, "[1] failing\n"));
  std::vector<int> pids = read_pids(cluster.dir(), 3, 1);
  ASSERT_EQ(pids.size(), 4u);
  // rank.sh returns only once the group is gone: no waiting here.
  EXPECT_TRUE(std::all_of(pids.begin(), pids.end(), process_gone));
}

TEST(ClusterFanout, CtrlCStopsEveryRank) {
  LoopbackCluster cluster(2);
  cluster::FanoutOptions options;
  // No rank fails by itself (rank 5 does not exist): they all sleep until stopped.
  options.command = sleepers_and_a_failure(cluster.dir(), 2, 5);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The tool's own path: the handlers, then a fan-out the signal interrupts.
    util::install_interrupt_handlers();
    try {
      cluster::fanout(cluster.nodes(), options);
      ::_exit(1);
    } catch (const InterruptedError&) {
      ::_exit(130);
    } catch (...) {
      ::_exit(2);
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!(std::filesystem::exists(cluster.dir() / "pids.0") &&
           std::filesystem::exists(cluster.dir() / "pids.1")) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<int> pids = read_pids(cluster.dir(), 2, -1);
  ::kill(child, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
  ASSERT_EQ(pids.size(), 4u);
  EXPECT_TRUE(all_gone(pids));
}

}  // namespace
}  // namespace gm::testing
