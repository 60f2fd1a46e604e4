// RemoteShell: run a command on a machine and put a file there. The seam that provision/ and
// probe/ depend on, so they can be tested with a fake shell as well as a real SSH session.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace gm::ssh {

/// Receives output as it arrives (arbitrary chunk boundaries).
using OutputSink = std::function<void(std::string_view chunk)>;

struct ExecResult {
  int exit_status = 0;  ///< The remote command's status; 128+N when killed by signal N.
  std::string out;      ///< Everything it wrote to stdout.
  std::string err;      ///< Everything it wrote to stderr.
};

class RemoteShell {
 public:
  virtual ~RemoteShell() = default;

  /// Runs command through the remote login shell, feeding stdin_data then EOF, streaming stdout
  /// and stderr separately as they arrive. Returns the exit status. Throws SshError when the
  /// connection fails (not when the command fails).
  virtual int exec(const std::string& command, const OutputSink& on_stdout,
                   const OutputSink& on_stderr, std::string_view stdin_data = {}) = 0;

  /// Writes content to remote_path (created or replaced) with the given permission bits.
  virtual void upload(const std::string& remote_path, std::string_view content,
                      unsigned mode = 0644) = 0;

  /// exec() collecting both streams, each up to k_max_collected_output bytes; a command that
  /// writes more (a flooding host) fails with SshError instead of exhausting memory.
  ExecResult run(const std::string& command, std::string_view stdin_data = {});

  /// Names the remote side in errors ("machine 'gpu1'").
  virtual std::string describe() const { return "the remote host"; }

  /// What run() keeps of one stream.
  static constexpr std::size_t k_max_collected_output = 8 * 1024 * 1024;
};

}  // namespace gm::ssh
