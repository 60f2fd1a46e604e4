#include "machine/cluster_nodes.h"

#include "gm/error.h"
#include "machine/connect.h"

namespace gm::machine {

MachineRecord node_record(const MachineRecord& record, int rank) {
  MachineRecord node = record;
  if (!record.cluster) {
    return node;
  }
  for (const ClusterNode& n : record.cluster->nodes) {
    if (n.rank == rank) {
      node.ssh.host = n.host;
      node.ssh.host_key = n.host_key;
      node.last_state = n.last_state;
      node.cluster.reset();
      return node;
    }
  }
  throw UsageError("machine '" + record.name + "'", "has no node " + std::to_string(rank),
                   "its nodes are 0 to " + std::to_string(record.cluster->nodes.size() - 1));
}

std::vector<int> node_ranks(const MachineRecord& record) {
  if (!record.cluster) {
    return {0};
  }
  std::vector<int> ranks;
  for (const ClusterNode& n : record.cluster->nodes) {
    ranks.push_back(n.rank);
  }
  return ranks;
}

std::vector<cluster::Node> fanout_nodes(const MachineRecord& record) {
  std::vector<cluster::Node> nodes;
  for (const ClusterNode& n : record.cluster->nodes) {
    nodes.push_back({.rank = n.rank,
                     .connect = [node = node_record(record, n.rank)] { return connect(node); },
                     .private_ip = n.private_ip,
                     .gpus = record.size.gpu_count});
  }
  return nodes;
}

std::string cluster_state(const std::vector<std::string>& node_states) {
  for (const std::string& s : node_states) {
    if (s != "running") {
      return s.empty() ? "unknown" : s;
    }
  }
  return node_states.empty() ? "unknown" : "running";
}

}  // namespace gm::machine
