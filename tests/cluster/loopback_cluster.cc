#include "cluster/loopback_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

namespace gm::testing {

LoopbackCluster::LoopbackCluster(int nodes) {
  std::string hosts = "127.0.0.1 localhost\n";
  for (int rank = 0; rank < nodes; ++rank) {
    hosts += address(rank) + " node" + std::to_string(rank) + "\n";
  }
  write_text(m_dir / "hosts", hosts);
  for (int rank = 0; rank < nodes; ++rank) {
    SshdOptions options;
    options.host = address(rank);
    options.launcher = {"unshare",
                        "--uts",
                        "--mount",
                        "--",
                        "sh",
                        "-c",
                        R"(hostname "$1" && mount --bind "$2" /etc/hosts && shift 2 && exec "$@")",
                        "sh",
                        "node" + std::to_string(rank),
                        (m_dir / "hosts").string()};
    m_sshd.push_back(std::make_unique<SshdFixture>(options));
  }
}

std::vector<cluster::Node> LoopbackCluster::nodes(int gpus) const {
  std::vector<cluster::Node> out;
  for (std::size_t rank = 0; rank < m_sshd.size(); ++rank) {
    cluster::Node node;
    node.rank = static_cast<int>(rank);
    node.private_ip = m_sshd[rank]->host();
    node.gpus = gpus;
    node.connect = [target = m_sshd[rank]->target()] {
      ssh::ConnectOptions options;
      options.target = target;
      return ssh::Session::connect(options);
    };
    out.push_back(std::move(node));
  }
  return out;
}

bool process_gone(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return true;
  }
  // A read of a file of a process that is just exiting fails with ESRCH: gone too.
  std::string text;
  int fd = ::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf);
    text.assign(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    ::close(fd);
  }
  std::size_t close = text.rfind(')');
  return close == std::string::npos || text.compare(close + 1, 3, " Z ") == 0;
}

}  // namespace gm::testing
