// Test support: child processes started by argv and stopped by pid (never by name), temporary
// directories, capturing a command's output, and free loopback ports.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::testing {

/// A private temporary directory, removed recursively when destroyed.
class TempDir {
 public:
  /// mkdtemp under $TMPDIR (or /tmp) with the given prefix.
  explicit TempDir(const std::string& prefix = "gm-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The directory.
  const std::filesystem::path& path() const { return m_path; }
  /// path() / name.
  std::filesystem::path operator/(const std::string& name) const { return m_path / name; }

 private:
  std::filesystem::path m_path;
};

struct SpawnOptions {
  /// Extra or replaced environment variables (the rest is inherited).
  std::map<std::string, std::string> env;
  /// Working directory; empty = inherited.
  std::filesystem::path cwd;
  /// Files that receive stdout / stderr (appended); empty = inherited.
  std::filesystem::path stdout_path;
  std::filesystem::path stderr_path;
  /// Stdin from /dev/null (default) instead of inheriting it.
  bool null_stdin = true;
  /// run_capture only: a child still running after this long (0: no limit) gets SIGTERM, then
  /// SIGKILL 5 s later, and its stderr so far ends with a line saying so. A hung command then
  /// fails its test with what it printed, before CTest's timeout kills the whole test silently.
  std::chrono::seconds limit{0};
};

/// A child process started from argv (argv[0] searched in PATH). Stopped when destroyed.
class Process {
 public:
  /// Starts argv; throws std::runtime_error when fork or exec fails.
  explicit Process(const std::vector<std::string>& argv, const SpawnOptions& options = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// The child's pid (0 once reaped).
  int pid() const { return m_pid; }
  /// True while the child has not exited (reaps it if it has).
  bool is_running();
  /// SIGTERM, then SIGKILL after grace, then waitpid. Returns the wait status (or the one
  /// already collected). Safe to call twice.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  /// Waits for the child to exit by itself; returns its exit code (128+N for signal N).
  int wait();

 private:
  int m_pid = 0;
  int m_status = 0;
};

struct CaptureResult {
  int status = -1;  ///< Exit code; 128+N when killed by signal N.
  std::string out;
  std::string err;
  /// The child's peak resident memory (wait4's ru_maxrss). It includes the forked test binary's
  /// pages before exec, so limits must stay well above the test binary's own size.
  long peak_rss_kib = 0;
};

/// Runs argv to completion and captures stdout and stderr (stdin gets stdin_data then EOF).
CaptureResult run_capture(const std::vector<std::string>& argv, const std::string& stdin_data = {},
                          const SpawnOptions& options = {});

/// A TCP port on addr that was free a moment ago (bind port 0, read it back, close).
int free_port(const std::string& addr = "127.0.0.1");

/// True when a TCP connect to addr:port succeeds.
bool port_accepts(const std::string& addr, int port);

/// Writes content to path (mode 0644 unless given) or throws.
void write_text(const std::filesystem::path& path, const std::string& content,
                unsigned mode = 0644);
/// The whole file or throws.
std::string read_text(const std::filesystem::path& path);

/// Receives a child's output as it arrives.
using OutputFn = std::function<void(std::string_view chunk)>;

/// Runs argv (argv[0] an absolute path) with exactly env, in cwd (empty: inherited), feeding
/// stdin_data then EOF and streaming stdout and stderr separately as they arrive. Returns the
/// exit code (128+N for signal N). What the LocalShell test doubles run commands with.
int run_streaming(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, const std::string& cwd,
                  std::string_view stdin_data, const OutputFn& on_stdout,
                  const OutputFn& on_stderr);

/// This process's environment.
std::map<std::string, std::string> current_environment();

}  // namespace gm::testing
