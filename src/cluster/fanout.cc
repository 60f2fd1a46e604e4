#include "cluster/fanout.h"

#include "gm/error.h"
#include "util/assets.h"
#include "util/fd.h"
#include "util/interrupt.h"
#include "util/shell.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

namespace gm::cluster {

namespace {

/// A line longer than this is passed on in pieces of this size, so a rank that never writes a
/// newline cannot grow the client's memory.
constexpr std::size_t k_max_line = 64 * 1024;

/// Cuts one stream of one rank into whole lines, each passed on with the rank's prefix.
class LineSplitter {
 public:
  LineSplitter(int rank, Stream stream, const std::function<void(Stream, std::string_view)>& emit)
      : m_prefix("[" + std::to_string(rank) + "] "), m_stream(stream), m_emit(emit) {
    m_line = m_prefix;
  }

  void feed(std::string_view chunk) {
    while (!chunk.empty()) {
      std::size_t room = k_max_line - (m_line.size() - m_prefix.size());
      std::size_t newline = chunk.find('\n');
      std::size_t take =
          std::min(newline == std::string_view::npos ? chunk.size() : newline + 1, room);
      m_line.append(chunk.substr(0, take));
      chunk.remove_prefix(take);
      if (m_line.back() == '\n' || take == room) {
        flush();
      }
    }
  }

  /// Passes on a last line that had no newline.
  void flush() {
    if (m_line.size() == m_prefix.size()) {
      return;
    }
    if (m_line.back() != '\n') {
      m_line += '\n';
    }
    m_emit(m_stream, m_line);
    m_line.resize(m_prefix.size());
  }

 private:
  std::string m_prefix;
  Stream m_stream;
  const std::function<void(Stream, std::string_view)>& m_emit;
  std::string m_line;
};

/// One rank's run: its thread, the pipe whose end is the remote command's stop signal, and how
/// it ended.
struct Rank {
  const Node* node = nullptr;
  util::Fd stop_read;
  util::Fd stop_write;  ///< Closed by the waiting thread to stop the rank.
  int status = 0;
  std::exception_ptr error;
  std::thread thread;
};

std::pair<util::Fd, util::Fd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error("cluster command", "cannot create a pipe", std::strerror(errno));
  }
  return {util::Fd(fds[0]), util::Fd(fds[1])};
}

std::vector<const Node*> by_rank(const std::vector<Node>& nodes) {
  if (nodes.empty()) {
    throw UsageError("cluster command", "there are no nodes to run it on");
  }
  std::vector<const Node*> ordered(nodes.size(), nullptr);
  for (const Node& node : nodes) {
    if (node.rank < 0 || static_cast<std::size_t>(node.rank) >= nodes.size() ||
        ordered[static_cast<std::size_t>(node.rank)] != nullptr) {
      throw UsageError("cluster command",
                       "the ranks of " + std::to_string(nodes.size()) + " nodes must be 0 to " +
                           std::to_string(nodes.size() - 1) + ", each once (rank " +
                           std::to_string(node.rank) + " is not)");
    }
    ordered[static_cast<std::size_t>(node.rank)] = &node;
  }
  return ordered;
}

}  // namespace

std::vector<std::string> rank_environment(const std::vector<Node>& nodes, const Node& node,
                                          int master_port) {
  std::vector<const Node*> ordered = by_rank(nodes);
  std::string ips;
  for (const Node* n : ordered) {
    ips += (ips.empty() ? "" : ",") + n->private_ip;
  }
  return {"NODE_RANK=" + std::to_string(node.rank),
          "NNODES=" + std::to_string(nodes.size()),
          "NODE_IPS=" + ips,
          "MASTER_ADDR=" + ordered.at(0)->private_ip,
          "MASTER_PORT=" + std::to_string(master_port),
          "GPUS_PER_NODE=" + std::to_string(node.gpus)};
}

FanoutResult fanout(const std::vector<Node>& nodes, const FanoutOptions& options) {
  std::vector<const Node*> ordered = by_rank(nodes);
  std::mutex output_mutex;
  std::function<void(Stream, std::string_view)> emit = [&](Stream stream, std::string_view line) {
    std::lock_guard<std::mutex> lock(output_mutex);
    if (options.on_line) {
      options.on_line(stream, line);
    }
  };
  auto [done_read, done_write] = make_pipe();

  std::vector<Rank> ranks(ordered.size());
  FanoutResult result;
  std::exception_ptr first_error;
  bool interrupted = false;
  auto stop_all = [&] {
    for (Rank& rank : ranks) {
      rank.stop_write.reset();  // the remote command's stdin ends: rank.sh stops its group
    }
  };
  // However this function ends, no rank outlives it.
  struct Joiner {
    std::vector<Rank>& ranks;
    std::function<void()> stop_all;
    ~Joiner() {
      stop_all();
      for (Rank& rank : ranks) {
        if (rank.thread.joinable()) {
          rank.thread.join();
        }
      }
    }
  } joiner{ranks, stop_all};
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    Rank& rank = ranks[i];
    rank.node = ordered[i];
    std::tie(rank.stop_read, rank.stop_write) = make_pipe();
    std::string command = "exec env";
    for (const std::string& word : rank_environment(nodes, *rank.node, options.master_port)) {
      command += " " + util::shell_quote(word);
    }
    command += " sh -c " + util::shell_quote(util::asset("cluster/rank.sh")) + " gm-rank " +
               util::shell_quote(options.command);
    rank.thread = std::thread([&rank, &emit, command, done = done_write.get(), index = i] {
      try {
        std::unique_ptr<ssh::Session> session = rank.node->connect();
        session->set_command_timeout(std::chrono::milliseconds(0));  // jobs run for days
        LineSplitter out(rank.node->rank, Stream::out, emit);
        LineSplitter err(rank.node->rank, Stream::err, emit);
        rank.status = session->exec_fd(
            command, rank.stop_read.get(), [&](std::string_view c) { out.feed(c); },
            [&](std::string_view c) { err.feed(c); });
        out.flush();
        err.flush();
      } catch (...) {
        rank.error = std::current_exception();
      }
      (void)!::write(done, &index, sizeof index);  // atomic: far below PIPE_BUF
    });
  }

  for (std::size_t finished = 0; finished < ranks.size(); ++finished) {
    pollfd p{done_read.get(), POLLIN, 0};
    if (!interrupted && util::poll_unless_interrupted(&p, 1, std::chrono::milliseconds(-1)) < 0) {
      interrupted = true;
      stop_all();
    }
    std::size_t index = 0;
    if (::read(done_read.get(), &index, sizeof index) != static_cast<ssize_t>(sizeof index)) {
      throw Error("cluster command", "lost track of the ranks", std::strerror(errno));
    }
    const Rank& rank = ranks.at(index);
    bool failed = rank.error != nullptr || rank.status != 0;
    if (failed && !result.failed_rank && !first_error && !interrupted) {
      result.failed_rank = rank.node->rank;
      result.exit_status = rank.status;
      first_error = rank.error;
      stop_all();
    }
  }
  for (Rank& rank : ranks) {
    rank.thread.join();
    result.statuses.push_back(rank.status);
  }
  if (interrupted) {
    throw InterruptedError("cluster command");
  }
  if (first_error) {
    std::rethrow_exception(first_error);
  }
  return result;
}

}  // namespace gm::cluster
