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
  if (record.last_state != "running" || record.cost.launched_at.empty()) {
    return "-";
  }
  auto t = util::parse_rfc3339(record.cost.launched_at);
  if (!t) {
    return "-";
  }
  return util::human_duration(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *t));
}

/// The machine's price from its driver (a cluster's: all its nodes'); nullopt for a driver this
/// version does not know.
std::optional<PriceQuote> price_of(const MachineRecord& r, const std::filesystem::path& home) {
  for (const DriverInfo& info : driver_registry()) {
    if (info.name == r.driver) {
      std::optional<PriceQuote> quote = info.make()->quote(r, home);
      if (quote && quote->usd_per_hour && r.cluster) {
        *quote->usd_per_hour *= r.cluster->size;
      }
      return quote;
    }
  }
  return std::nullopt;
}

/// What ls shows of one machine: its table cells and its JSON row.
struct Row {
  std::vector<std::string> cells;
  nlohmann::json json;
  std::string error;  ///< why the state is "error"; shown under the table
  std::vector<std::vector<std::string>> node_cells;  ///< a cluster's nodes, under its row
};

Row error_row(const std::string& name, const std::string& error) {
  return {{name, "-", "-", "-", "-", "error", "-", "-", "-", "-", "-"},
          {{"name", name}, {"state", "error"}, {"error", error}},
          error};
}

/// Throws nlohmann::json::exception when a field the row shows has the wrong JSON type.
Row describe(const MachineRecord& r, std::chrono::system_clock::time_point now,
             const std::filesystem::path& home) {
  Row row;
  row.json = machine_summary(r);
  std::string uptime = uptime_text(r);
  row.json["uptime"] = uptime == "-" ? nlohmann::json(nullptr) : nlohmann::json(uptime);
  if (r.facts.contains("ls_error")) {
    row.error = r.facts.at("ls_error").get<std::string>();
    row.json["error"] = row.error;
  }
  cost::CostView costs = cost::cost_view(r, price_of(r, home), now);
  cost::add_cost_fields(row.json, costs);
  std::string autostop = cost::autostop_text(r);
  row.json["autostop"] = autostop == "-" ? nlohmann::json(nullptr) : nlohmann::json(autostop);
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  row.cells = {r.name,
               r.driver,
               dash(r.size.region),
               dash(r.size.instance_type),
               gpu_summary(r),
               r.last_state.empty() ? "unknown" : r.last_state,
               r.ssh.host.empty() ? "-" : r.ssh.host,
               uptime,
               costs.price_text,
               costs.cost_text,
               autostop};
  if (r.cluster) {
    row.cells[3] = std::to_string(r.cluster->size) + "x " + row.cells[3];
    row.json["nodes"] = nlohmann::json::array();
    for (const ClusterNode& n : r.cluster->nodes) {
      std::string state = n.last_state.empty() ? "unknown" : n.last_state;
      row.json["nodes"].push_back(
          {{"rank", n.rank},
           {"id", n.id},
           {"state", state},
           {"ip", n.host.empty() ? nlohmann::json(nullptr) : nlohmann::json(n.host)},
           {"private_ip", n.private_ip}});
      row.node_cells.push_back({r.name + "/" + std::to_string(n.rank), "", "", "", "", state,
                                dash(n.host), "", "", "", ""});
    }
  }
  return row;
}

/// The row of an entry. A record with a field of the wrong JSON type becomes an error entry, like
/// a corrupt one, so that one bad record never breaks the listing nor its driver's batch.
Row row_of(store::Entry& e, std::chrono::system_clock::time_point now, const store::Store& store) {
  if (e.record) {
    try {
      return describe(*e.record, now, store.home());
    } catch (const nlohmann::json::exception& ex) {
      e.error = "corrupt record " + store.record_path(e.name).string() + ": " + ex.what();
      e.record.reset();
    }
  }
  return error_row(e.name, e.error);
}

int run_ls(Context& ctx, const LsOptions& opts) {
  std::vector<store::Entry> entries = ctx.store().list();
  const auto now = std::chrono::system_clock::now();
  for (store::Entry& e : entries) {
    row_of(e, now, ctx.store());  // weeds out records the drivers' batches could not read either
  }
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
      } catch (const std::exception& e) {  // gm::Error, or a record field of the wrong type
        for (MachineRecord* r : records) {
          r->last_state = "error";
          r->facts["ls_error"] = e.what();
        }
      }
    }
  }
  std::vector<Row> rows;
  for (store::Entry& e : entries) {
    rows.push_back(row_of(e, now, ctx.store()));
  }
  if (ctx.json()) {
    nlohmann::json out = nlohmann::json::array();
    for (Row& row : rows) {
      out.push_back(std::move(row.json));
    }
    ctx.out().print_json(out);
    return 0;
  }
  std::vector<std::vector<std::string>> cells;
  for (const Row& row : rows) {
    cells.push_back(row.cells);
    cells.insert(cells.end(), row.node_cells.begin(), row.node_cells.end());
  }
  // COST is an estimate (running time of this launch x $/H), hence its "~".
  ctx.out().print_table({"NAME", "DRIVER", "REGION", "TYPE", "GPU", "STATE", "IP", "UPTIME", "$/H",
                         "COST", "AUTOSTOP"},
                        cells);
  // Reasons are long; under the table they leave the columns readable.
  for (const Row& row : rows) {
    if (!row.error.empty()) {
      ctx.out().print_line(row.cells[0] + ": " + row.error);
    }
  }
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
