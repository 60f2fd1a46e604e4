// `gpumachine gc [--region R]... [--delete] [--all-homes] [--min-age D]`: find cloud resources
// tagged gpumachine:* that no local record owns (a lost home directory, a record deleted by hand,
// `rm --force`), and remove them with --delete. Only this home's (gpumachine:home) and only
// those older than --min-age are ever deleted; another home's, untagged ones and those of a
// local record that cannot be read are listed as kept, with the reason.
#include "cli/verbs.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "util/log.h"
#include "util/prompt.h"
#include "util/time.h"

#include <map>
#include <set>

namespace gm::cli {

namespace {

struct GcOptions {
  std::vector<std::string> regions;
  bool remove = false;
  bool all_homes = false;
  std::string min_age = "10m";
};

std::string joined(const std::set<std::string>& items) {
  std::string s;
  for (const std::string& i : items) {
    s += (s.empty() ? "" : ", ") + i;
  }
  return s;
}

nlohmann::json to_json(const Orphan& o) {
  nlohmann::json row = {{"kind", o.kind},   {"id", o.id},         {"region", o.region},
                        {"state", o.state}, {"detail", o.detail}, {"machine", o.machine},
                        {"home", o.home}};
  if (!o.kept.empty()) {
    row["reason"] = o.kept;
  }
  return row;
}

std::vector<std::string> row_of(const Orphan& o) {
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  std::vector<std::string> row = {o.kind,        o.id,           dash(o.region),
                                  dash(o.state), dash(o.detail), dash(o.machine)};
  if (!o.kept.empty()) {
    row.push_back(o.kept);
  }
  return row;
}

/// One driver's part of a gc run: its scan and what it found.
struct DriverScan {
  const DriverInfo* info = nullptr;
  OrphanScope scope;
  std::vector<Orphan> found;
};

int run_gc(Context& ctx, const GcOptions& opts) {
  OrphanScope common;
  std::optional<std::chrono::seconds> min_age = util::parse_duration(opts.min_age);
  if (!min_age) {
    throw UsageError("--min-age " + opts.min_age, "not a duration", "e.g. --min-age 30m");
  }
  common.min_age = *min_age;
  common.all_homes = opts.all_homes;
  // Deleting needs a yes: asked on a terminal, else --yes (never assumed in a script).
  if (opts.remove && !ctx.globals().yes && !util::terminal_attached()) {
    throw UsageError("gc --delete", "there is no terminal to ask for confirmation on",
                     "list first with `gpumachine gc`, then pass --yes to delete what it lists");
  }
  // Each driver that leaves tagged resources scans its regions: --region, else those of its
  // machines and its default one. A regional driver with none to scan is skipped.
  std::map<std::string, std::set<std::string>> regions_of;
  for (const store::Entry& e : ctx.store().list()) {
    if (!e.record) {
      common.unreadable_names.insert(e.name);
      continue;
    }
    common.known_ids.insert(e.record->id);
    if (!e.record->size.region.empty()) {
      regions_of[e.record->driver].insert(e.record->size.region);
    }
  }
  common.home_id = ctx.store().home_id();
  std::set<std::string> regions(opts.regions.begin(), opts.regions.end());
  std::vector<DriverScan> scanned;
  for (const DriverInfo& info : driver_registry()) {
    if (!info.find_orphans) {
      continue;
    }
    std::set<std::string> own = regions;
    if (opts.regions.empty()) {
      own = regions_of[info.name];
      if (info.default_region) {
        if (std::optional<std::string> region = info.default_region()) {
          own.insert(*region);
        }
      }
    }
    if (own.empty() && info.default_region) {
      continue;  // regional, and nothing names a region
    }
    DriverScan scan{&info, common, {}};
    scan.scope.regions = {own.begin(), own.end()};
    regions.insert(own.begin(), own.end());
    scanned.push_back(std::move(scan));
  }
  if (scanned.empty()) {
    throw UsageError("gc", "no region to scan", "pass --region R (repeatable), or set AWS_REGION");
  }
  std::vector<Orphan> found;
  for (DriverScan& scan : scanned) {
    scan.found = scan.info->find_orphans(scan.scope);
    found.insert(found.end(), scan.found.begin(), scan.found.end());
  }
  std::vector<Orphan> orphans, kept;
  for (Orphan& o : found) {
    (o.kept.empty() ? orphans : kept).push_back(std::move(o));
  }
  if (!ctx.json()) {
    if (!orphans.empty()) {
      ctx.out().print_table({"KIND", "ID", "REGION", "STATE", "DETAIL", "MACHINE"}, [&] {
        std::vector<std::vector<std::string>> rows;
        for (const auto& o : orphans) {
          rows.push_back(row_of(o));
        }
        return rows;
      }());
    }
    if (!kept.empty()) {
      util::info("kept (never deleted by gc):");
      ctx.out().print_table({"KIND", "ID", "REGION", "STATE", "DETAIL", "MACHINE", "WHY KEPT"},
                            [&] {
                              std::vector<std::vector<std::string>> rows;
                              for (const auto& o : kept) {
                                rows.push_back(row_of(o));
                              }
                              return rows;
                            }());
    }
    if (orphans.empty()) {
      util::info("no orphaned gpumachine resources of this home in " + joined(regions));
    } else if (!opts.remove) {
      util::info("run `gpumachine gc --delete` to remove the " + std::to_string(orphans.size()) +
                 " listed first");
    }
  }
  std::vector<std::string> actions;
  if (opts.remove && !orphans.empty()) {
    if (!confirm(ctx, "Delete these " + std::to_string(orphans.size()) + " resources?")) {
      throw Error("gc --delete", "cancelled: nothing was deleted", {},
                  "answer y, or pass --yes to skip the question");
    }
    for (const DriverScan& scan : scanned) {
      std::vector<Orphan> own;
      for (const Orphan& o : scan.found) {
        if (o.kept.empty()) {
          own.push_back(o);
        }
      }
      if (!own.empty()) {
        std::vector<std::string> done = scan.info->delete_orphans(own);
        actions.insert(actions.end(), done.begin(), done.end());
      }
    }
  }
  bool failed = false;
  for (const std::string& a : actions) {
    failed = failed || a.starts_with("FAILED");
  }
  if (ctx.json()) {
    nlohmann::json rows = nlohmann::json::array(), kept_rows = nlohmann::json::array();
    for (const auto& o : orphans) {
      rows.push_back(to_json(o));
    }
    for (const auto& o : kept) {
      kept_rows.push_back(to_json(o));
    }
    ctx.out().print_json({{"regions", regions},
                          {"home", common.home_id},
                          {"orphans", rows},
                          {"kept", kept_rows},
                          {"deleted", opts.remove},
                          {"actions", actions}});
  } else {
    for (const std::string& a : actions) {
      util::info(a);
    }
  }
  return failed ? exit_code::k_failure : 0;
}

}  // namespace

void setup_gc(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "gc",
      "list (and with --delete remove) cloud resources this home's gpumachine made that no "
      "local record owns");
  auto opts = std::make_shared<GcOptions>();
  sub->add_option("--region", opts->regions,
                  "region to scan (repeatable; default: the regions of your machines and the "
                  "configured region)");
  sub->add_flag("--delete", opts->remove,
                "remove what was found (asks on a terminal; needs --yes without one)");
  sub->add_flag("--all-homes", opts->all_homes,
                "also other homes' resources and those without a home tag (older versions)");
  sub->add_option("--min-age", opts->min_age,
                  "never touch resources younger than this (default 10m: a create may be under "
                  "way)");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_gc(ctx, *opts); }; });
}

}  // namespace gm::cli
