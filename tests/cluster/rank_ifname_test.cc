// rank.sh's NCCL_SOCKET_IFNAME on real interfaces: in a network namespace the test makes (a veth
// pair with 10.9.0.1/24 on v0), the master node itself (MASTER_ADDR is its own address, whose
// route is `local ... dev lo`) and another node both name v0, the interface the nodes meet on.
#include "support/process.h"
#include "util/assets.h"

#include <gtest/gtest.h>

namespace gm::testing {
namespace {

/// NCCL_SOCKET_IFNAME as rank.sh sets it on a node whose address is \a own, for \a master.
CaptureResult ifname_on(const std::string& own, const std::string& master) {
  // The rank's stdin is its stop signal: a fifo held open by a writer the script ends by pid.
  std::string script =
      "set -e; ip link set lo up; ip link add v0 type veth peer name v1; "
      "ip addr add " +
      own +
      "/24 dev v0; ip link set v0 up; ip link set v1 up; "
      "dir=$(mktemp -d); mkfifo \"$dir/stop\"; sleep 60 >\"$dir/stop\" & writer=$!; "
      "MASTER_ADDR=" +
      master +
      " sh -c \"$1\" gm-rank 'echo \"ifname=$NCCL_SOCKET_IFNAME\"' "
      "<\"$dir/stop\"; kill \"$writer\"; rm -r \"$dir\"";
  return run_capture(
      {"unshare", "--net", "sh", "-c", script, "sh", std::string(util::asset("cluster/rank.sh"))});
}

TEST(ClusterRankScript, NcclInterfaceIsTheOneTheNodesMeetOnAlsoOnTheMaster) {
  if (run_capture(
          {"unshare", "--net", "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"})
          .status != 0) {
    GTEST_SKIP() << "cannot make a veth pair in a network namespace here";
  }
  CaptureResult worker = ifname_on("10.9.0.2", "10.9.0.1");
  EXPECT_EQ(worker.status, 0) << worker.err;
  EXPECT_NE(worker.out.find("ifname=v0"), std::string::npos) << worker.out << worker.err;
  CaptureResult master = ifname_on("10.9.0.1", "10.9.0.1");
  EXPECT_EQ(master.status, 0) << master.err;
  EXPECT_NE(master.out.find("ifname=v0"), std::string::npos) << master.out << master.err;
}

}  // namespace
}  // namespace gm::testing
