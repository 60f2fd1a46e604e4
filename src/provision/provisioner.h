// Provisioning over SSH: wait, facts, plan, then each planned step as one remote script (check and
// apply in a single round trip), rebooting through a caller-supplied reconnect when the driver
// needs it. Talks to the host only through ssh::RemoteShell.
#pragma once

#include "provision/facts.h"
#include "provision/plan.h"
#include "ssh/remote_shell.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gm::provision {

/// Opens a new session to the same host (pinned host key) after a reboot, retrying until SSH
/// answers or its own deadline passes (then it throws SshError).
using ReconnectFn = std::function<std::unique_ptr<ssh::RemoteShell>()>;

/// How to provision.
struct ProvisionOptions {
  Overrides overrides;
  /// Subject of error messages: `machine "a100"`.
  std::string subject = "host";
  /// How long the wait step waits for cloud-init and the package lock.
  std::chrono::seconds wait_timeout{900};
  /// Seconds between lock polls in the wait step.
  std::chrono::seconds poll_interval{2};
  /// How long after issuing the reboot before the first reconnect: the host goes down a second
  /// after the command returns (scripts/reboot.sh), and reconnecting earlier just reaches the old
  /// boot and costs a handshake.
  std::chrono::milliseconds reboot_grace{3000};
  /// How many times to reconnect when the host answers with the same boot id (it had not gone down
  /// yet when reconnect() reached it).
  int max_reconnects = 5;
  /// Pause before reconnecting again to a host that has not rebooted yet.
  std::chrono::milliseconds reconnect_pause{2000};
  /// The host's log of every step's output.
  std::string log_path = "/var/log/gpumachine/provision.log";
};

/// What happened to a step.
enum class StepOutcome { skipped, checked, already_done, applied };
/// "skipped", "checked" (read-only steps: wait, facts, verify), "already done", "applied".
std::string_view to_string(StepOutcome outcome);

/// One step's result.
struct StepReport {
  StepId id = StepId::wait;
  StepOutcome outcome = StepOutcome::skipped;
  std::chrono::milliseconds elapsed{0};
  std::string detail;  ///< The plan's reason, or what the script said it did.
};

/// Progress callbacks; every member is optional.
struct Callbacks {
  /// A step begins (also called for skipped steps, which end at once).
  std::function<void(StepId step, std::string_view reason)> on_step_start;
  /// A step ended.
  std::function<void(const StepReport& report)> on_step_end;
  /// Each line of remote output, as it arrives (for -v).
  std::function<void(std::string_view line)> on_output;
  /// What a long step is doing now, from apt's status lines ("downloading packages: 45.0 MB /
  /// 312.0 MB (14%), 12.3 MB/s, 21s left"); replaces the previous text. Those status lines are not
  /// passed to on_output.
  std::function<void(std::string_view text)> on_progress;
  /// Notes and warnings worth a line even without -v ("no NVIDIA GPU on this host").
  std::function<void(std::string_view note)> on_note;
};

/// What provision() found and did.
struct ProvisionResult {
  Facts facts;  ///< As of the last facts read (after the reboot when there was one).
  Plan plan;
  nlohmann::json versions = nlohmann::json::object();  ///< From verify: driver, cuda, toolkit...
  std::vector<StepReport> steps;
  std::vector<std::string> notes;
  int round_trips = 0;  ///< Remote commands run.
  int handshakes = 1;   ///< SSH connections used: the caller's plus one per reconnect.
  int reboots = 0;

  /// True when any step applied a change.
  bool changed() const;
  /// What to store in MachineRecord::facts: {"host": facts, "provision": {branch, flavour,
  /// versions, notes, steps}}.
  nlohmann::json record_facts() const;
};

/// Reads the host's facts (one round trip; read-only). For `inspect` and `provision --dry-run`.
Facts gather_facts(ssh::RemoteShell& shell, const ProvisionOptions& options = {});

/// Provisions the host behind shell. Throws StepError when a step fails (re-running resumes: every
/// step whose check passes is skipped), UsageError/UnsupportedError from planning, SshError from
/// the connection or reconnect().
ProvisionResult provision(ssh::RemoteShell& shell, const ReconnectFn& reconnect,
                          const ProvisionOptions& options, const Callbacks& callbacks = {});

/// What a fresh EC2 host needs to know in advance to start installing from user data.
struct PreludeInputs {
  std::string os_id;          ///< "ubuntu", "debian", "amzn".
  std::string os_version_id;  ///< "24.04", "12", "2023".
  std::string user;           ///< The SSH user that joins the docker group ("ubuntu").
  /// The instance type's GPUs (from the instance catalogue); empty for Docker only.
  std::vector<GpuGeneration> gpus;
  bool nvswitch = false;
  Overrides overrides;
};

/// A bash fragment for cloud-init user data (runs as root on first boot) that starts the driver,
/// Docker and toolkit installation with the same scripts the SSH side runs, logging to the same
/// file. It never fails cloud-init: the SSH side waits for it, then every step it finished checks
/// as done. The reboot decision stays with the SSH side. Throws like plan_for().
std::string cloud_init_prelude(const PreludeInputs& inputs);

}  // namespace gm::provision
