#include "provision/provisioner.h"

#include "gm/error.h"
#include "provision/apt_progress.h"
#include "provision/step_error.h"
#include "util/assets.h"
#include "util/interrupt.h"

#include <deque>
#include <map>
#include <sstream>

namespace gm::provision {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t k_tail_lines = 20;
constexpr std::string_view k_marker = "gm: ";

// What one script invocation printed, sorted into the markers the scripts use (lib.sh).
struct ScriptRun {
  int exit_status = 0;
  bool already_done = false;
  bool applied = false;
  bool rebooting = false;
  std::string detail;  // "(...)" of "already done"/"applied", or the reboot reason
  std::vector<std::string> notes;
  std::vector<std::string> hints;
  std::map<std::string, std::string> facts;
  std::string json;
  std::deque<std::string> tail;
  std::string error_line;
};

std::string strip_parens(std::string_view text) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  if (text.size() >= 2 && text.front() == '(' && text.back() == ')') {
    text = text.substr(1, text.size() - 2);
  }
  return std::string(text);
}

// Splits a stream into lines. A line longer than k_max_line (a runaway command printing without
// newlines) is cut there and the rest of it dropped, so memory stays bounded.
class LineSplitter {
 public:
  static constexpr size_t k_max_line = 1 << 20;  // the facts JSON line is the longest, ~10 KiB

  explicit LineSplitter(std::function<void(std::string_view)> on_line)
      : m_on_line(std::move(on_line)) {}
  void feed(std::string_view chunk) {
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      std::string_view piece = chunk.substr(0, nl);
      if (!m_dropping) {
        size_t room = k_max_line - m_buffer.size();
        m_buffer.append(piece.substr(0, room));
        if (piece.size() > room) {
          m_on_line(m_buffer + " [line cut at 1 MiB]");
          m_buffer.clear();
          m_dropping = true;
        }
      }
      if (nl == std::string_view::npos) {
        return;
      }
      if (!m_dropping) {
        m_on_line(m_buffer);
      }
      m_buffer.clear();
      m_dropping = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  void finish() {
    if (!m_buffer.empty()) {
      m_on_line(m_buffer);
      m_buffer.clear();
    }
  }

 private:
  std::function<void(std::string_view)> m_on_line;
  std::string m_buffer;
  bool m_dropping = false;  ///< inside a line that was already cut
};

class Runner {
 public:
  Runner(ssh::RemoteShell& shell, const ProvisionOptions& options, const Callbacks& callbacks,
         ProvisionResult& result)
      : m_shell(&shell), m_options(options), m_callbacks(callbacks), m_result(result) {}

  ScriptRun run(const std::string& text) {
    ScriptRun run;
    AptProgress apt;
    auto on_line = [&](std::string_view line) {
      if (apt.read(line)) {
        if (m_callbacks.on_progress && apt.text()) {
          m_callbacks.on_progress(*apt.text());
        }
        return;
      }
      if (line.starts_with(k_marker)) {
        handle_marker(run, line.substr(k_marker.size()));
        if (line.starts_with("gm: json ")) {
          return;  // machine-readable; too long to be useful on screen or in the tail
        }
      } else if (line.starts_with("error: ")) {
        run.error_line = std::string(line.substr(7));
      }
      run.tail.emplace_back(line);
      if (run.tail.size() > k_tail_lines) {
        run.tail.pop_front();
      }
      if (m_callbacks.on_output) {
        m_callbacks.on_output(line);
      }
    };
    LineSplitter out(on_line);
    LineSplitter err(on_line);
    ++m_result.round_trips;
    run.exit_status = m_shell->exec(
        "bash -s", [&](std::string_view c) { out.feed(c); },
        [&](std::string_view c) { err.feed(c); }, text);
    out.finish();
    err.finish();
    return run;
  }

  void use(ssh::RemoteShell& shell) { m_shell = &shell; }

  [[noreturn]] void fail(StepId step, const ScriptRun& run) {
    std::string hint;
    for (const std::string& h : run.hints) {
      hint += (hint.empty() ? "" : "; ") + h;
    }
    if (hint.empty()) {
      hint = "the full log is " + m_options.log_path +
             " on the host; provisioning again resumes at this step";
    }
    std::string cause = run.error_line;
    if (cause.empty()) {
      for (auto it = run.tail.rbegin(); it != run.tail.rend(); ++it) {
        if (!it->empty()) {
          cause = *it;
          break;
        }
      }
    }
    throw StepError(m_options.subject, std::string(to_string(step)), run.exit_status, cause,
                    {run.tail.begin(), run.tail.end()}, hint, m_options.log_path);
  }

  void note(std::string text) {
    if (m_callbacks.on_note) {
      m_callbacks.on_note(text);
    }
    m_result.notes.push_back(std::move(text));
  }

 private:
  void handle_marker(ScriptRun& run, std::string_view rest) {
    auto take = [&](std::string_view word) {
      if (rest.starts_with(word)) {
        rest.remove_prefix(word.size());
        return true;
      }
      return false;
    };
    if (take("already done")) {
      run.already_done = true;
      run.detail = strip_parens(rest);
    } else if (take("applied")) {
      run.applied = true;
      run.detail = strip_parens(rest);
    } else if (take("rebooting ")) {
      run.rebooting = true;
      run.detail = std::string(rest);
    } else if (take("note ")) {
      run.notes.emplace_back(rest);
    } else if (take("hint ")) {
      run.hints.emplace_back(rest);
    } else if (take("fact ")) {
      size_t eq = rest.find('=');
      if (eq != std::string_view::npos) {
        run.facts[std::string(rest.substr(0, eq))] = std::string(rest.substr(eq + 1));
      }
    } else if (take("json ")) {
      run.json = std::string(rest);
    }
  }

  ssh::RemoteShell* m_shell;
  const ProvisionOptions& m_options;
  const Callbacks& m_callbacks;
  ProvisionResult& m_result;
};

std::map<std::string, std::string> base_env(const ProvisionOptions& options) {
  return {
      {"GM_WAIT_TIMEOUT", std::to_string(options.wait_timeout.count())},
      {"GM_POLL_SECONDS", std::to_string(std::max<long long>(1, options.poll_interval.count()))},
      {"GM_LOG_FILE", options.log_path}};
}

Facts facts_from(const ScriptRun& run, const ProvisionOptions& options) {
  nlohmann::json json = nlohmann::json::parse(run.json, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    throw Error(options.subject, "the facts script printed no facts",
                run.tail.empty() ? std::string() : run.tail.back(),
                "run with -v to see its output");
  }
  return parse_facts(json);
}

// Before the plan exists only these steps run; they need no plan parameters.
Plan bootstrap_plan() {
  return Plan{};
}

}  // namespace

std::string_view to_string(StepOutcome outcome) {
  switch (outcome) {
    case StepOutcome::skipped:
      return "skipped";
    case StepOutcome::checked:
      return "checked";
    case StepOutcome::already_done:
      return "already done";
    case StepOutcome::applied:
      return "applied";
  }
  return "?";
}

bool ProvisionResult::changed() const {
  for (const StepReport& s : steps) {
    if (s.outcome == StepOutcome::applied) {
      return true;
    }
  }
  return false;
}

nlohmann::json ProvisionResult::record_facts() const {
  nlohmann::json steps_json = nlohmann::json::array();
  for (const StepReport& s : steps) {
    steps_json.push_back({{"step", to_string(s.id)},
                          {"outcome", to_string(s.outcome)},
                          {"seconds", static_cast<double>(s.elapsed.count()) / 1000.0},
                          {"detail", s.detail}});
  }
  nlohmann::json prov = {
      {"versions", versions}, {"notes", notes}, {"steps", steps_json}, {"reboots", reboots}};
  if (plan.has_gpu) {
    prov["driver_branch"] = plan.driver_branch;
    prov["driver_flavour"] = to_string(plan.flavour);
  }
  return {{"host", to_json(facts)}, {"provision", prov}};
}

Facts gather_facts(ssh::RemoteShell& shell, const ProvisionOptions& options) {
  ProvisionResult scratch;
  Callbacks none;
  Runner runner(shell, options, none, scratch);
  const std::string asset = "provision/scripts/facts.sh";
  ScriptRun run = runner.run(compose_script(bootstrap_plan(), "facts", {asset}, base_env(options)));
  if (run.exit_status != 0) {
    runner.fail(StepId::facts, run);
  }
  return facts_from(run, options);
}

ProvisionResult provision(ssh::RemoteShell& shell, const ReconnectFn& reconnect,
                          const ProvisionOptions& options, const Callbacks& callbacks) {
  ProvisionResult result;
  Runner runner(shell, options, callbacks, result);
  std::unique_ptr<ssh::RemoteShell> reconnected;
  std::map<std::string, std::string> env = base_env(options);

  auto start = [&](StepId id, std::string_view reason) {
    if (callbacks.on_step_start) {
      callbacks.on_step_start(id, reason);
    }
    return Clock::now();
  };
  auto end = [&](StepId id, Clock::time_point began, StepOutcome outcome, std::string detail) {
    StepReport report{id, outcome,
                      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began),
                      std::move(detail)};
    result.steps.push_back(report);
    if (callbacks.on_step_end) {
      callbacks.on_step_end(report);
    }
  };
  auto run_checked = [&](StepId id, const Plan& plan, const std::vector<std::string>& scripts,
                         const std::map<std::string, std::string>& extra) {
    ScriptRun run = runner.run(compose_script(plan, to_string(id), scripts, extra));
    for (const std::string& n : run.notes) {
      runner.note(n);
    }
    if (run.exit_status != 0) {
      runner.fail(id, run);
    }
    return run;
  };

  // 1 and 2: wait, then facts; the plan needs the facts.
  auto began = start(StepId::wait, "cloud-init and the package manager's lock");
  run_checked(StepId::wait, bootstrap_plan(), {"provision/scripts/wait.sh"}, env);
  end(StepId::wait, began, StepOutcome::checked, "ready");

  began = start(StepId::facts, "one read-only look at the host");
  ScriptRun facts_run =
      run_checked(StepId::facts, bootstrap_plan(), {"provision/scripts/facts.sh"}, env);
  result.facts = facts_from(facts_run, options);
  end(StepId::facts, began, StepOutcome::checked, "");

  result.plan = plan_for(result.facts, options.overrides);
  for (const std::string& w : result.plan.warnings) {
    runner.note("warning: " + w);
  }
  for (const std::string& n : result.plan.notes) {
    runner.note(n);
  }

  bool driver_changed = false;
  for (const PlannedStep& step : result.plan.steps) {
    if (step.id == StepId::wait || step.id == StepId::facts) {
      continue;
    }
    began = start(step.id, step.reason);
    if (!step.run) {
      end(step.id, began, StepOutcome::skipped, step.reason);
      continue;
    }
    std::map<std::string, std::string> extra = env;
    extra["GM_DRIVER_CHANGED"] = driver_changed ? "1" : "0";
    ScriptRun run = run_checked(step.id, result.plan, {step.script}, extra);

    if (step.id == StepId::reboot && run.rebooting) {
      runner.note("rebooting: " + run.detail);
      const std::string old_boot = run.facts["boot_id"];
      ScriptRun after;
      bool rebooted = false;
      for (int attempt = 0; attempt < options.max_reconnects && !rebooted; ++attempt) {
        if (!util::sleep_unless_interrupted(attempt == 0 ? options.reboot_grace
                                                         : options.reconnect_pause)) {
          throw InterruptedError(options.subject);
        }
        reconnected = reconnect();
        ++result.handshakes;
        runner.use(*reconnected);
        // Wait and facts again in one round trip: the host's state changed with the boot.
        after = run_checked(StepId::reboot, result.plan,
                            {"provision/scripts/wait.sh", "provision/scripts/facts.sh"}, env);
        rebooted = old_boot.empty() || after.facts["boot_id"] != old_boot;
      }
      if (!rebooted) {
        throw Error(options.subject, "the host did not reboot",
                    "it still answers with boot id " + old_boot,
                    "reboot it by hand (gpumachine restart) and provision again");
      }
      ++result.reboots;
      result.facts = facts_from(after, options);
      if (!result.facts.driver_consistent()) {
        after.error_line = result.facts.nouveau_loaded
                               ? "nouveau is still loaded after the reboot"
                               : "the nvidia module is not loaded after the reboot";
        after.exit_status = 1;
        after.hints.push_back("look at \"dmesg | grep -i -e nvrm -e nouveau\" on the host");
        runner.fail(StepId::reboot, after);
      }
      if (options.overrides.no_gsp && result.facts.gsp_param != "0") {
        // modprobe.d applies when the module loads; an initramfs that loads it early has its
        // own copy of the options.
        after.error_line = "the nvidia module still runs with GSP firmware on after the reboot";
        after.exit_status = 1;
        after.hints.push_back(
            "the initramfs may load nvidia before /etc/modprobe.d is read: run \"sudo "
            "update-initramfs -u\" (or \"sudo dracut -f\" on Amazon Linux), then gpumachine "
            "restart");
        runner.fail(StepId::reboot, after);
      }
      end(step.id, began, StepOutcome::applied, run.detail);
      continue;
    }
    if (step.id == StepId::verify && !run.json.empty()) {
      nlohmann::json v = nlohmann::json::parse(run.json, nullptr, false);
      if (v.is_object()) {
        result.versions = v;
      }
    }
    if (step.id == StepId::driver && run.applied) {
      driver_changed = true;
    }
    StepOutcome outcome = run.already_done ? StepOutcome::already_done : StepOutcome::applied;
    if (step.id == StepId::verify) {
      outcome = StepOutcome::checked;
    }
    end(step.id, began, outcome, run.detail);
  }
  return result;
}

std::string cloud_init_prelude(const PreludeInputs& in) {
  Facts f;
  f.os_id = in.os_id;
  f.os_version_id = in.os_version_id;
  f.user = in.user;
  for (GpuGeneration g : in.gpus) {
    f.gpus.push_back(Gpu{"", 0, g});
  }
  f.nvswitch_count = in.nvswitch ? 1 : 0;
  Plan plan = plan_for(f, in.overrides);
  // Nothing here may fail cloud-init (the SSH side would stop at "cloud-init finished with an
  // error"): each step runs in its own subshell with errexit, and a failure is only logged; the
  // SSH side redoes that step and shows its error. lib.sh goes in once, comments not at all, to
  // stay well inside EC2's 16 KiB of user data.
  std::vector<const PlannedStep*> steps;
  for (StepId id : {StepId::driver, StepId::fabric, StepId::docker, StepId::toolkit}) {
    if (plan.step(id).run) {
      steps.push_back(&plan.step(id));
    }
  }
  std::string body;
  for (const PlannedStep* s : steps) {
    const std::string name(to_string(s->id));
    body += "(\nGM_STEP=" + name + "\n" + std::string(util::asset(s->script)) + "\n)\n";
    body += "rc=$?; [ \"$rc\" -eq 0 ] || echo \"gpumachine: step " + name +
            " failed ($rc); the SSH provisioner will redo it\"\n";
  }
  std::string composed = compose_script(plan, "user data", {}, {{"GM_DRIVER_CHANGED", "0"}});
  // compose_script() ends with "\n} </dev/null\n": the steps go inside, after lib.sh.
  composed.insert(composed.rfind("\n} </dev/null"), "\nset +e\n" + body);
  // cloud-init execs a text/x-shellscript part: without "#!" first it fails ("Exec format error").
  std::string text =
      "#!/bin/bash\n"
      "# gpumachine: start installing during boot; `gpumachine provision` waits for cloud-init,\n"
      "# then finds these steps done (or redoes them) and decides about the reboot.\n"
      "bash -s <<'GM_USERDATA'\n";
  std::istringstream lines(composed);
  for (std::string line; std::getline(lines, line);) {
    size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') {
      continue;
    }
    text += line + "\n";
  }
  text += "GM_USERDATA\n";
  return text;
}

}  // namespace gm::provision
