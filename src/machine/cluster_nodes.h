// A cluster's nodes seen one at a time (docs/clusters.md): each node as a record of its own for
// what works on one machine (connect, the SSH wait, rsync), and the state the cluster shows.
#pragma once

#include "cluster/fanout.h"
#include "gm/machine.h"

#include <string>
#include <vector>

namespace gm::machine {

/// The record as node \a rank sees it: that node's address and pinned host key in ssh, its
/// last_state. Only for reading: the node's changes go back into record.cluster, never saved
/// as the record.
MachineRecord node_record(const MachineRecord& record, int rank);

/// The ranks of the record: 0..N-1 for a cluster, {0} for one machine.
std::vector<int> node_ranks(const MachineRecord& record);

/// The cluster's nodes for cluster::fanout(): each connects to its own address against its pinned
/// key; private addresses and GPU counts from the record.
std::vector<cluster::Node> fanout_nodes(const MachineRecord& record);

/// One state for the cluster from its nodes' states: theirs when they agree, else the first
/// node's that is not "running" (a cluster is running only when every node is).
std::string cluster_state(const std::vector<std::string>& node_states);

}  // namespace gm::machine
