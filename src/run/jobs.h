// Jobs on a machine: `gpumachine run`'s containers, started detached so they outlive the laptop's
// connection, and found again from any later process through their labels (the embedded
// run/job.sh is the one place that knows how). Works over any RemoteShell.
#pragma once

#include "ssh/remote_shell.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::run {

/// `run`'s exit code when the job could not be started (sync, image build or container start
/// failed), like `docker run`'s own 125; once the job ran, `run` exits with the job's status.
/// Beside gm::exit_code's codes (docs/cli.md lists them all).
inline constexpr int k_exit_not_started = 125;

/// One job as the machine reports it.
struct JobInfo {
  std::string id;
  std::string command;
  std::string state;  ///< docker's: "running", "exited", "created", ...
  int exit_code = 0;  ///< meaningful once the state is "exited"
  std::string started_at;
  std::string finished_at;  ///< docker's zero time while running
  bool running() const { return state == "running" || state == "created"; }
};

/// What `prepare` found on the machine.
struct HostSide {
  std::string project_dir;  ///< absolute path of the project on the machine
  bool existed = false;     ///< the project had been synced before
  bool rsync = false;
  bool docker = false;
};

/// A new job id: 8 random lowercase hex digits.
std::string new_job_id();

/// Parses job.sh's `list` output; lines that do not parse are skipped. Newest first.
std::vector<JobInfo> parse_job_list(std::string_view text);

/// "running 1m 5s", "exited (7) after 3s" style seconds between docker's two RFC 3339 times (or
/// until now while running); "-" when unknown.
std::string job_duration(const JobInfo& job);

/// The TCP host ports in docker's Ports column ("127.0.0.1:8888->8888/tcp, :::6006->6006/tcp"),
/// each once, sorted.
std::vector<int> parse_published_ports(std::string_view text);

class Jobs {
 public:
  /// machine names the machine in errors and hints ("gpu1").
  Jobs(ssh::RemoteShell& shell, std::string machine);

  /// Makes ~/gpumachine/projects/<project> and the job folder; says what the host has.
  HostSide prepare(const std::string& project);
  /// `docker build` of the project's dockerfile (a path relative to it) as tag, its output
  /// streamed to on_output.
  void build(const std::string& tag, const std::string& project_dir, const std::string& dockerfile,
             const ssh::OutputSink& on_output);
  /// Starts the job's container (detached). env: docker --env-file lines (never on a command
  /// line or in a file that stays). ports: published on the machine's 127.0.0.1, each as itself.
  void start(const std::string& id, const std::string& image, const std::string& project_dir,
             bool gpus, const std::string& command, const std::string& env,
             const std::vector<int>& ports = {});
  /// Streams the job's output (with follow: until it ends; since: RFC 3339, only what it wrote
  /// from then on); throws InterruptedError on Ctrl-C.
  void logs(const std::string& id, bool follow, const std::string& since,
            const ssh::OutputSink& on_stdout, const ssh::OutputSink& on_stderr);
  /// Waits for the job to end and returns its exit status.
  int wait(const std::string& id);
  /// Asks the job to stop (SIGTERM, then SIGKILL after docker's grace period); with background
  /// the machine does it while this returns at once.
  void stop(const std::string& id, bool background = false);
  /// `docker compose ARGS` (or docker-compose) in the project folder, its output streamed;
  /// returns its exit status.
  int compose(const std::string& project_dir, const std::vector<std::string>& args,
              const ssh::OutputSink& on_stdout, const ssh::OutputSink& on_stderr);
  /// The host ports the project's compose containers publish.
  std::vector<int> published_ports(const std::string& project_dir);
  /// Every job on the machine, newest first.
  std::vector<JobInfo> list();
  /// The job with this id; throws NotFoundError naming `gpumachine jobs`.
  JobInfo find(const std::string& id);

 private:
  static std::string command(const std::vector<std::string>& args);
  ssh::ExecResult run_action(const std::vector<std::string>& args, std::string_view input = {});
  void check(const ssh::ExecResult& r, const std::string& what);

  ssh::RemoteShell& m_shell;
  std::string m_machine;
};

}  // namespace gm::run
