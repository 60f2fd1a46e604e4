// `gpumachine ls`: every machine with its live state, one batched check per driver (per region
// for cloud drivers), all under one deadline. A corrupt record is a row with its error.
#include "cli/verbs.h"

#include "cost/cost.h"
#include "gm/driver.h"
#include "gm/error.h"
#include "util/time.h"

#include <chrono>
#include <map>

namespace gm::cli {

namespace {

struct LsOptions {
  bool cached = false;
  double timeout_seconds = 10;
};

std::string uptime_text(const MachineRecord& record) {
  if (record.last_state != "running" || !record.facts.contains("launched_at")) {
    return "-";
  }
  auto t = util::parse_rfc3339(record.facts["launched_at"].get<std::string>());
  if (!t) {
    return "-";
  }
  return util::human_duration(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *t));
}

int run_ls(Context& ctx, const LsOptions& opts) {
  std::vector<store::Entry> entries = ctx.store().list();
  if (!opts.cached) {
    std::map<std::string, std::vector<MachineRecord*>> by_driver;
    for (store::Entry& e : entries) {
      if (e.record) {
        by_driver[e.record->driver].push_back(&*e.record);
      }
    }
    auto timeout = std::chrono::milliseconds(static_cast<long>(opts.timeout_seconds * 1000));
    for (auto& [driver, records] : by_driver) {
      try {
        const DriverInfo& info = find_driver(driver);
        if (info.list_states) {
          info.list_states(records, timeout);
        }
      } catch (const Error& e) {
        for (MachineRecord* r : records) {
          r->last_state = "error";
          r->facts["ls_error"] = e.what();
        }
      }
    }
  }
  const auto now = std::chrono::system_clock::now();
  if (ctx.json()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const store::Entry& e : entries) {
      if (!e.record) {
        rows.push_back({{"name", e.name}, {"state", "error"}, {"error", e.error}});
        continue;
      }
      nlohmann::json row = machine_summary(*e.record);
      std::string uptime = uptime_text(*e.record);
      row["uptime"] = uptime == "-" ? nlohmann::json(nullptr) : nlohmann::json(uptime);
      if (e.record->facts.contains("ls_error")) {
        row["error"] = e.record->facts["ls_error"];
      }
      cost::add_cost_fields(row, cost::cost_view(*e.record, now, ctx.store().home()));
      std::string autostop = cost::autostop_text(*e.record);
      row["autostop"] = autostop == "-" ? nlohmann::json(nullptr) : nlohmann::json(autostop);
      rows.push_back(row);
    }
    ctx.out().print_json(rows);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const store::Entry& e : entries) {
    if (!e.record) {
      rows.push_back({e.name, "-", "-", "-", "-", "error: " + e.error, "-", "-", "-", "-", "-"});
      continue;
    }
    const MachineRecord& r = *e.record;
    auto cfg = [&](const char* key) {
      return r.driver_config.contains(key) ? r.driver_config[key].get<std::string>() : "-";
    };
    cost::CostView costs = cost::cost_view(r, now, ctx.store().home());
    rows.push_back({r.name, r.driver, cfg("region"), cfg("instance_type"), gpu_summary(r),
                    r.last_state.empty() ? "unknown" : r.last_state,
                    r.ssh.host.empty() ? "-" : r.ssh.host, uptime_text(r), costs.price_text,
                    costs.cost_text, cost::autostop_text(r)});
  }
  // COST is an estimate (running time of this launch x $/H), hence its "~".
  ctx.out().print_table({"NAME", "DRIVER", "REGION", "TYPE", "GPU", "STATE", "IP", "UPTIME", "$/H",
                         "COST", "AUTOSTOP"},
                        rows);
  return 0;
}

}  // namespace

void setup_ls(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("ls", "list machines with their live state");
  auto opts = std::make_shared<LsOptions>();
  sub->add_flag("--cached", opts->cached, "answer from the records, without network calls");
  sub->add_option("--timeout", opts->timeout_seconds, "overall deadline in seconds (default 10)");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_ls(ctx, *opts); }; });
}

}  // namespace gm::cli
