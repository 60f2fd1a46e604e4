// Fan-out: one command on every node of a cluster at once, each rank over its own SSH session
// with the rank environment torchrun and NCCL expect, output prefixed by rank, and the first
// failing rank deciding the result while the other ranks are stopped (their whole process group,
// on the remote side, by src/cluster/rank.sh).
#pragma once

#include "ssh/session.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::cluster {

/// One node of the command: its rank, how to reach it, its address inside the cluster.
struct Node {
  int rank = 0;
  /// Opens the node's SSH session (pinned host key); called on the rank's own thread.
  std::function<std::unique_ptr<ssh::Session>()> connect;
  /// The address the other nodes reach it at (rank 0's is MASTER_ADDR).
  std::string private_ip;
  int gpus = 0;
};

enum class Stream { out, err };

/// Receives whole lines, already prefixed with "[RANK] " and ending in '\n'; calls are
/// serialized, so lines of different ranks never interleave.
using LineSink = std::function<void(Stream stream, std::string_view line)>;

struct FanoutOptions {
  /// Run by each node's login shell, in the rank environment.
  std::string command;
  int master_port = 29500;
  LineSink on_line;  ///< None: the output is dropped.
};

struct FanoutResult {
  /// The first failing rank's exit status (128+N for signal N); 0 when every rank succeeded.
  int exit_status = 0;
  /// The rank that failed first; none when every rank succeeded.
  std::optional<int> failed_rank;
  /// Every rank's own exit status, in rank order (stopped ranks report how they were stopped).
  std::vector<int> statuses;
};

/// Each rank's environment as NAME=value words, in a fixed order: NODE_RANK, NNODES, NODE_IPS
/// (comma-separated, in rank order), MASTER_ADDR (rank 0's private address), MASTER_PORT,
/// GPUS_PER_NODE. (NCCL_SOCKET_IFNAME is found on the node itself.)
std::vector<std::string> rank_environment(const std::vector<Node>& nodes, const Node& node,
                                          int master_port);

/// Runs options.command on all nodes (ranks 0..N-1, each exactly once, else UsageError) in
/// parallel and returns when every rank has ended. A connection failure stops the other ranks and
/// is rethrown; Ctrl-C (util/interrupt) stops every rank and throws InterruptedError.
FanoutResult fanout(const std::vector<Node>& nodes, const FanoutOptions& options);

}  // namespace gm::cluster
