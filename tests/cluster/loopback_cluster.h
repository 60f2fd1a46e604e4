// Test support: N loopback "nodes" of a cluster, each a real OpenSSH sshd on its own address
// 127.0.R+1.1 (R the rank) running in a UTS + mount namespace of its own, with hostname nodeR and
// an /etc/hosts that names every node, so what runs there (gloo binds to the address its hostname
// resolves to) sees one machine per rank. Everything stays on loopback.
#pragma once

#include "cluster/fanout.h"
#include "support/sshd.h"

#include <memory>
#include <string>
#include <vector>

namespace gm::testing {

class LoopbackCluster {
 public:
  explicit LoopbackCluster(int nodes);

  /// The nodes for cluster::fanout(), each with \a gpus GPUs.
  std::vector<cluster::Node> nodes(int gpus = 1) const;
  /// A scratch directory the nodes share (they are all this machine).
  const std::filesystem::path& dir() const { return m_dir.path(); }
  static std::string address(int rank) { return "127.0." + std::to_string(rank + 1) + ".1"; }

 private:
  TempDir m_dir{"gm-cluster"};
  std::vector<std::unique_ptr<SshdFixture>> m_sshd;
};

/// True when no process has \a pid any more (a zombie counts as gone: it runs nothing).
bool process_gone(int pid);

}  // namespace gm::testing
