// `gpumachine probe NAME --cluster`: an all-reduce across every node of a cluster.
#pragma once

#include "cli/context.h"

#include <string>

namespace gm::cli {

struct ClusterProbeOptions {
  std::string name;
  std::string python = "python3";  ///< the nodes' Python with torch
  bool expect_efa = false;         ///< a transport other than EFA fails the probe
  int master_port = 29500;
};

/// Runs src/cluster/allreduce_probe.py on every node through cluster::fanout and reports rank
/// 0's findings (bus bandwidth, transport) with a verdict: exit 0 when the sum is right (and with
/// expect_efa EFA carried it), 1 otherwise.
int probe_cluster(Context& ctx, const ClusterProbeOptions& options);

}  // namespace gm::cli
