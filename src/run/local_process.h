// Local helper programs `run` drives (git for the file list, rsync and tar for the transfer):
// started with posix_spawnp, stdout read through a pipe, waited for by pid.
#pragma once

#include "util/fd.h"

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::run {

class LocalProcess {
 public:
  /// Starts argv (argv[0] looked up in PATH) in cwd (empty: ours); stdin from stdin_fd (-1:
  /// /dev/null); stdout into out_fd, or (-1) into a pipe read through stdout_fd(); stderr stays
  /// ours; fd3, when given, becomes the child's descriptor 3.
  LocalProcess(const std::vector<std::string>& argv, const std::string& cwd = {}, int stdin_fd = -1,
               int out_fd = -1, int fd3 = -1);
  /// Kills (SIGKILL) and reaps a child still running: no process outlives its owner.
  ~LocalProcess();
  LocalProcess(const LocalProcess&) = delete;
  LocalProcess& operator=(const LocalProcess&) = delete;

  /// The read end of the child's stdout.
  int stdout_fd() const { return m_stdout.get(); }
  /// Hands the read end away (e.g. as another command's input).
  util::Fd take_stdout() { return std::move(m_stdout); }
  /// Reads stdout to EOF, in chunks, to on_chunk.
  void read_stdout(const std::function<void(std::string_view)>& on_chunk);
  /// Waits for the child; its exit status (128+N when killed by signal N).
  int wait();

 private:
  pid_t m_pid = -1;
  util::Fd m_stdout;
};

/// Runs argv to completion and returns its stdout; throws Error(subject, problem, stderr-less
/// cause) when it exits non-zero or cannot start.
std::string capture(const std::vector<std::string>& argv, const std::string& cwd,
                    const std::string& subject, const std::string& problem);

}  // namespace gm::run
