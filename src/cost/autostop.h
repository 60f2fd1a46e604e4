// Autostop: the setting (idle duration, action, lifetime cap), where it lives in the machine
// record, and the remote side: the host agent (src/cost/agent/gpumachine-autostop.sh, embedded),
// its config file and its installation in one SSH round trip. The host decides on its own (systemd
// timer), so a forgotten machine stops with the laptop closed; the instance's
// InstanceInitiatedShutdownBehavior (record.cost.power_off_action) turns the host's power-off
// into an EC2 stop or terminate.
#pragma once

#include "gm/machine.h"
#include "ssh/remote_shell.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace gm::cost {

/// What the power-off becomes on EC2.
enum class AutostopAction { stop, terminate };
/// "stop" or "terminate".
std::string_view to_string(AutostopAction action);
/// Inverse of to_string(); nullopt for anything else.
std::optional<AutostopAction> parse_action(std::string_view text);

/// One autostop setting.
struct AutostopSettings {
  /// Idle time before the power-off; 0: no idle stop (only the lifetime cap).
  std::chrono::seconds idle{0};
  AutostopAction action = AutostopAction::stop;
  /// Hard cap on running time regardless of activity; 0: none.
  std::chrono::seconds max_lifetime{0};
  /// GPU utilization (percent) that counts as activity.
  int gpu_threshold = 10;
};

/// From the create / autostop flags ("30m", "stop", "8h"; empty strings: not given). Returns
/// nullopt when neither an idle duration nor a lifetime is given. Throws UsageError naming the
/// flag for a malformed duration or action. Windows under a minute are accepted (demos, tests);
/// the host checks once a minute, so they fire at the next check.
std::optional<AutostopSettings> parse_autostop_flags(const std::string& idle,
                                                     const std::string& action,
                                                     const std::string& max_lifetime);

/// "30m", "30m (terminate)", "30m, max 8h", "max 8h".
std::string describe(const AutostopSettings& settings);

/// The record's setting (record.cost.autostop), nullopt when off or absent.
std::optional<AutostopSettings> autostop_from_record(const MachineRecord& record);
/// Stores the setting (nullopt: off) in record.cost.autostop and the matching
/// record.cost.power_off_action ("stop" or "terminate"; the EC2 driver passes it as
/// InstanceInitiatedShutdownBehavior). Kept across stop/start: it is part of the record.
void store_autostop(MachineRecord& record, const std::optional<AutostopSettings>& settings);
/// Whether the agent for the record's setting is on the host (record.cost.agent_on_host;
/// store_autostop() clears it, a successful install sets it). Records without it count as on.
bool agent_on_host(const MachineRecord& record);
void set_agent_on_host(MachineRecord& record, bool on_host);
/// Throws UnsupportedError for autostop on a machine that nothing could start again (a driver
/// without power control: generic) unless \a allow_poweroff (--allow-poweroff).
void check_poweroff_allowed(const MachineRecord& record, bool can_power_on, bool allow_poweroff);
/// {"idle_seconds", "action", "max_lifetime_seconds", "gpu_threshold"}.
nlohmann::json to_json(const AutostopSettings& settings);

/// Where the agent lives on the host; tests point these under a scratch root.
struct AgentPaths {
  std::string script = "/usr/local/lib/gpumachine/gpumachine-autostop.sh";
  std::string config = "/etc/gpumachine/autostop.conf";
  std::string state = "/var/lib/gpumachine/autostop.state";
  std::string log = "/var/log/gpumachine/autostop.log";
  std::string systemd_dir = "/etc/systemd/system";
  /// Extra KEY=VALUE lines appended to the config (tests: POWEROFF_CMD, SSH_LOCAL_ADDRESSES).
  std::string extra_config;
};

/// The agent script (embedded).
std::string_view agent_script();

/// The host's /etc/gpumachine/autostop.conf for a setting.
std::string agent_config(const AutostopSettings& settings, const AgentPaths& paths = {});

/// A bash script (for `bash -s` as root, or with sudo -n when not root) that writes the agent,
/// its config and its units, reloads systemd, enables the timer and arms the agent: the whole
/// installation in one round trip. Also what the provisioner runs when create got --autostop.
std::string install_script(const AutostopSettings& settings, const AgentPaths& paths = {});
/// A bash script that disarms the agent: disables the timer and marks the config disabled.
std::string uninstall_script(const AgentPaths& paths = {});
/// The command that prints the agent's --status JSON.
std::string status_command(const AgentPaths& paths = {});
/// The command the driver runs after `start` (a new launch: the lifetime clock restarts). A no-op
/// where the agent is not installed.
std::string new_launch_command(const AgentPaths& paths = {});

/// Installs (settings) or disarms (nullopt) over an open shell, one round trip. Throws gm::Error
/// with the remote stderr when the script fails.
void apply_on_host(ssh::RemoteShell& shell, const std::optional<AutostopSettings>& settings,
                   const std::string& subject, const AgentPaths& paths = {});

/// The agent's view, from its --status JSON.
struct AgentStatus {
  bool armed = false;
  std::string action;
  std::optional<std::chrono::seconds> fires_in;  ///< nullopt: nothing will fire.
  std::chrono::seconds idle{0};
  std::string last_reason;
  nlohmann::json raw;
};

/// Parses --status output; throws gm::Error when it is not the agent's JSON.
AgentStatus parse_agent_status(std::string_view json_text);

/// Asks the host (one round trip). nullopt when the agent is not installed there.
std::optional<AgentStatus> query_agent_status(ssh::RemoteShell& shell,
                                              const AgentPaths& paths = {});

/// For `status`: "autostop fires in ~12 min (idle 18m of 30m, action stop)", "autostop: off".
std::string describe_status(const std::optional<AgentStatus>& status);

}  // namespace gm::cost
