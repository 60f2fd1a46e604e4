#include "cost/autostop.h"

#include "gm/error.h"
#include "util/assets.h"
#include "util/time.h"

#include <cmath>

namespace gm::cost {

namespace {

constexpr std::string_view k_agent_eof = "GM_AUTOSTOP_AGENT_EOF";
constexpr std::string_view k_config_eof = "GM_AUTOSTOP_CONFIG_EOF";

/// Single-quotes text for a POSIX shell.
std::string quote(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

/// A host path in a remote script, under $GM_SYSROOT when the host sets it (a simulated host in
/// tests, like the provisioning scripts' R=); the script sets R first (k_root_line).
std::string rooted(std::string_view path) {
  return "\"$R\"" + quote(path);
}
constexpr std::string_view k_root_line = "R=\"${GM_SYSROOT:-}\"\n";

/// Runs a script as root: directly when the login is root, else through sudo -n (no prompt:
/// there is no terminal to answer on).
constexpr std::string_view k_as_root =
    "if [ \"$(id -u)\" -eq 0 ]; then bash -s; else sudo -n bash -s; fi";

std::chrono::seconds parse_flag_duration(const std::string& flag, const std::string& text) {
  std::optional<std::chrono::seconds> d = util::parse_duration(text);
  if (!d || d->count() <= 0) {
    throw UsageError(flag + " '" + text + "'", "is not a duration",
                     "use e.g. 30m, 1h30m, 8h or 2d");
  }
  return *d;
}

/// "30m", "8h", "1h30m", "45s", "2d": the flag's own spelling, zero parts left out.
std::string short_duration(std::chrono::seconds d) {
  long s = d.count();
  std::string out;
  for (auto [unit, size] : {std::pair{"d", 86400L}, {"h", 3600L}, {"m", 60L}, {"s", 1L}}) {
    if (s >= size) {
      out += std::to_string(s / size) + unit;
      s %= size;
    }
  }
  return out.empty() ? "0s" : out;
}

}  // namespace

std::string_view to_string(AutostopAction action) {
  return action == AutostopAction::terminate ? "terminate" : "stop";
}

std::optional<AutostopAction> parse_action(std::string_view text) {
  if (text == "stop") {
    return AutostopAction::stop;
  }
  if (text == "terminate") {
    return AutostopAction::terminate;
  }
  return std::nullopt;
}

std::optional<AutostopSettings> parse_autostop_flags(const std::string& idle,
                                                     const std::string& action,
                                                     const std::string& max_lifetime) {
  AutostopSettings s;
  if (!action.empty()) {
    std::optional<AutostopAction> a = parse_action(action);
    if (!a) {
      throw UsageError("--autostop-action '" + action + "'", "is not an action",
                       "use stop (the disk stays, restart later) or terminate (everything goes)");
    }
    s.action = *a;
  }
  if (!idle.empty() && idle != "off") {
    s.idle = parse_flag_duration("--autostop", idle);
  }
  if (!max_lifetime.empty()) {
    s.max_lifetime = parse_flag_duration("--max-lifetime", max_lifetime);
  }
  if (s.idle.count() == 0 && s.max_lifetime.count() == 0) {
    if (!action.empty()) {
      throw UsageError("--autostop-action", "needs --autostop DURATION or --max-lifetime DURATION");
    }
    return std::nullopt;
  }
  return s;
}

std::string describe(const AutostopSettings& s) {
  std::string out;
  if (s.idle.count() > 0) {
    out = short_duration(s.idle);
  }
  if (s.max_lifetime.count() > 0) {
    out += (out.empty() ? "max " : ", max ") + short_duration(s.max_lifetime);
  }
  if (s.action == AutostopAction::terminate) {
    out += " (terminate)";
  }
  return out;
}

nlohmann::json to_json(const AutostopSettings& s) {
  return {{"idle_seconds", s.idle.count()},
          {"action", to_string(s.action)},
          {"max_lifetime_seconds", s.max_lifetime.count()},
          {"gpu_threshold", s.gpu_threshold}};
}

std::optional<AutostopSettings> autostop_from_record(const MachineRecord& record) {
  if (!record.cost.autostop) {
    return std::nullopt;
  }
  const AutostopPolicy& p = *record.cost.autostop;
  AutostopSettings s;
  s.idle = std::chrono::seconds(p.idle_seconds);
  s.max_lifetime = std::chrono::seconds(p.max_lifetime_seconds);
  s.action = parse_action(p.action).value_or(AutostopAction::stop);
  s.gpu_threshold = p.gpu_threshold;
  if (s.idle.count() == 0 && s.max_lifetime.count() == 0) {
    return std::nullopt;
  }
  return s;
}

void store_autostop(MachineRecord& record, const std::optional<AutostopSettings>& settings) {
  if (!settings) {
    record.cost.autostop.reset();
    return;
  }
  record.cost.autostop = AutostopPolicy{.idle_seconds = settings->idle.count(),
                                        .max_lifetime_seconds = settings->max_lifetime.count(),
                                        .action = std::string(to_string(settings->action)),
                                        .gpu_threshold = settings->gpu_threshold};
  record.cost.power_off_action = std::string(to_string(settings->action));
  set_agent_on_host(record, false);
}

bool agent_on_host(const MachineRecord& record) {
  return record.cost.agent_on_host;
}

void set_agent_on_host(MachineRecord& record, bool on_host) {
  record.cost.agent_on_host = on_host;
}

void check_poweroff_allowed(const MachineRecord& record, bool can_power_on, bool allow_poweroff) {
  if (!can_power_on && !allow_poweroff) {
    throw UnsupportedError("machine '" + record.name + "'",
                           "is a " + record.driver +
                               " machine: autostop powers the host off, and nothing can start it "
                               "again from here",
                           "pass --allow-poweroff if that is what you want");
  }
}

std::string_view agent_script() {
  return util::asset("cost/agent/gpumachine-autostop.sh");
}

std::string agent_config(const AutostopSettings& s, const AgentPaths& paths) {
  std::string out =
      "# gpumachine autostop agent configuration, written by `gpumachine autostop`.\n"
      "# KEY=VALUE lines; read (not sourced) by " +
      paths.script +
      ".\n"
      "ENABLED=1\n"
      "IDLE_SECONDS=" +
      std::to_string(s.idle.count()) +
      "\n"
      "MAX_LIFETIME_SECONDS=" +
      std::to_string(s.max_lifetime.count()) +
      "\n"
      "ACTION=" +
      std::string(to_string(s.action)) +
      "\n"
      "GPU_THRESHOLD=" +
      std::to_string(s.gpu_threshold) +
      "\n"
      "STATE_FILE=" +
      paths.state +
      "\n"
      "LOG_FILE=" +
      paths.log + "\n";
  return out + paths.extra_config;
}

std::string install_script(const AutostopSettings& settings, const AgentPaths& paths) {
  std::string_view agent = agent_script();
  std::string config = agent_config(settings, paths);
  // The quoted heredocs carry the files verbatim; their end markers must not occur inside.
  if (agent.find(k_agent_eof) != std::string_view::npos ||
      config.find(k_config_eof) != std::string::npos) {
    throw Error("autostop agent", "contains its own heredoc end marker");
  }
  auto dir_of = [](const std::string& path) { return rooted(path.substr(0, path.rfind('/'))); };
  std::string s = "set -euo pipefail\numask 022\n" + std::string(k_root_line);
  s += "mkdir -p " + dir_of(paths.script) + " " + dir_of(paths.config) + " " + dir_of(paths.state) +
       " " + dir_of(paths.log) + "\n";
  s += "cat >" + rooted(paths.script + ".tmp") + " <<'" + std::string(k_agent_eof) + "'\n";
  s += std::string(agent);
  if (!agent.ends_with('\n')) {
    s += "\n";
  }
  s += std::string(k_agent_eof) + "\n";
  s += "chmod 0755 " + rooted(paths.script + ".tmp") + "\n";
  s += "mv -f " + rooted(paths.script + ".tmp") + " " + rooted(paths.script) + "\n";
  s += "cat >" + rooted(paths.config + ".tmp") + " <<'" + std::string(k_config_eof) + "'\n";
  s += config + std::string(k_config_eof) + "\n";
  s += "mv -f " + rooted(paths.config + ".tmp") + " " + rooted(paths.config) + "\n";
  s += "if [ -n \"$R\" ]; then sed -i \"s|^STATE_FILE=|&$R|; s|^LOG_FILE=|&$R|\" " +
       rooted(paths.config) + "; fi\n";
  // --install writes the units, reloads systemd, enables the timer and arms both clocks.
  s += "AUTOSTOP_CONFIG=" + rooted(paths.config) + " AUTOSTOP_SELF=" + rooted(paths.script) +
       " AUTOSTOP_SYSTEMD_DIR=" + rooted(paths.systemd_dir) + " " + rooted(paths.script) +
       " --install\n";
  s += "echo 'gm: applied (autostop " + describe(settings) + ")'\n";
  return s;
}

std::string uninstall_script(const AgentPaths& paths) {
  std::string s = "set -euo pipefail\n" + std::string(k_root_line);
  s += "if [ ! -x " + rooted(paths.script) +
       " ]; then echo 'gm: already done (no agent)'; exit 0; fi\n";
  // ENABLED=0 first: a check that starts while the timer is being disabled does nothing.
  s += "if [ -f " + rooted(paths.config) + " ]; then sed -i 's/^ENABLED=.*/ENABLED=0/' " +
       rooted(paths.config) + "; fi\n";
  s += "AUTOSTOP_CONFIG=" + rooted(paths.config) +
       " AUTOSTOP_SYSTEMD_DIR=" + rooted(paths.systemd_dir) + " " + rooted(paths.script) +
       " --uninstall\n";
  s += "echo 'gm: applied (autostop off)'\n";
  return s;
}

std::string status_command(const AgentPaths& paths) {
  return std::string(k_root_line) + "if [ -x " + rooted(paths.script) + " ] && [ -f " +
         rooted(paths.config) + " ]; then AUTOSTOP_CONFIG=" + rooted(paths.config) + " " +
         rooted(paths.script) + " --status; else echo '{\"installed\":false}'; fi";
}

std::string new_launch_command(const AgentPaths& paths) {
  return std::string(k_root_line) + "if [ -x " + rooted(paths.script) + " ]; then " +
         std::string(k_as_root) + " <<'EOF'\n" + std::string(k_root_line) +
         "AUTOSTOP_CONFIG=" + rooted(paths.config) + " " + rooted(paths.script) +
         " --new-launch\nEOF\nfi";
}

void apply_on_host(ssh::RemoteShell& shell, const std::optional<AutostopSettings>& settings,
                   const std::string& subject, const AgentPaths& paths) {
  std::string script = settings ? install_script(*settings, paths) : uninstall_script(paths);
  ssh::ExecResult r = shell.run(std::string(k_as_root), script);
  if (r.exit_status != 0) {
    std::string err = r.err.empty() ? r.out : r.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) {
      err.pop_back();
    }
    throw Error(
        subject,
        settings ? "installing the autostop agent failed" : "disarming the autostop agent failed",
        err, "the login user needs root or passwordless sudo");
  }
}

AgentStatus parse_agent_status(std::string_view json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, false);
  if (!j.is_object() || (!j.contains("armed") && !j.contains("installed"))) {
    throw Error("autostop agent", "answered --status with something that is not its JSON",
                std::string(json_text.substr(0, 200)));
  }
  AgentStatus s;
  s.raw = j;
  s.armed = j.value("armed", false);
  s.action = j.value("action", "");
  if (j.contains("fires_in_seconds") && j["fires_in_seconds"].is_number()) {
    s.fires_in = std::chrono::seconds(j["fires_in_seconds"].get<long>());
  }
  s.idle = std::chrono::seconds(j.value("idle_seconds", 0L));
  s.last_reason = j.value("last_reason", "");
  return s;
}

std::optional<AgentStatus> query_agent_status(ssh::RemoteShell& shell, const AgentPaths& paths) {
  ssh::ExecResult r = shell.run(status_command(paths));
  if (r.exit_status != 0) {
    throw Error("autostop agent", "--status failed", r.err);
  }
  AgentStatus s = parse_agent_status(r.out);
  if (s.raw.contains("installed") && !s.raw["installed"].get<bool>()) {
    return std::nullopt;
  }
  return s;
}

std::string describe_status(const std::optional<AgentStatus>& status) {
  if (!status || !status->armed) {
    return "autostop: off";
  }
  if (!status->fires_in) {
    return "autostop: armed, nothing to fire";
  }
  long minutes = std::lround(static_cast<double>(status->fires_in->count()) / 60.0);
  long limit = status->raw.value("idle_limit_seconds", 0L);
  std::string idle = limit > 0 ? "idle " + short_duration(status->idle) + " of " +
                                     short_duration(std::chrono::seconds(limit)) + ", "
                               : "";
  // The agent checks once a minute, so "now" means within the next check.
  return "autostop fires in ~" +
         (minutes <= 0 ? std::string("1 min") : std::to_string(minutes) + " min") + " (" + idle +
         "action " + status->action + ")";
}

}  // namespace gm::cost
