// `gpumachine gc [--region R]... [--delete] [--all-homes] [--min-age D]`: find cloud resources
// tagged gpumachine:* that no local record owns (a lost home directory, a record deleted by hand,
// `rm --force`), and remove them with --delete. Only this home's (gpumachine:home) and only
// those older than --min-age are ever deleted; another home's, untagged ones and those of a
// local record that cannot be read are listed as kept, with the reason.
#include "cli/verbs.h"

#include "aws/endpoints.h"
#include "cost/cost.h"
#include "drivers/ec2/ec2_driver.h"
#include "gm/error.h"
#include "util/log.h"
#include "util/time.h"

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

nlohmann::json to_json(const drivers::ec2::Orphan& o) {
  nlohmann::json row = {{"kind", o.resource.kind},
                        {"id", o.resource.id},
                        {"region", o.resource.region},
                        {"state", o.resource.state},
                        {"detail", o.resource.detail},
                        {"machine", o.machine},
                        {"home", o.home}};
  if (!o.kept.empty()) {
    row["reason"] = o.kept;
  }
  return row;
}

std::vector<std::string> row_of(const drivers::ec2::Orphan& o) {
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  std::vector<std::string> row = {o.resource.kind,         o.resource.id,
                                  o.resource.region,       dash(o.resource.state),
                                  dash(o.resource.detail), dash(o.machine)};
  if (!o.kept.empty()) {
    row.push_back(o.kept);
  }
  return row;
}

int run_gc(Context& ctx, const GcOptions& opts) {
  drivers::ec2::GcScope scope;
  std::optional<std::chrono::seconds> min_age = util::parse_duration(opts.min_age);
  if (!min_age) {
    throw UsageError("--min-age " + opts.min_age, "not a duration", "e.g. --min-age 30m");
  }
  scope.min_age = *min_age;
  scope.all_homes = opts.all_homes;
  // Deleting needs a yes: asked on a terminal, else --yes (never assumed in a script).
  if (opts.remove && !ctx.globals().yes && !cost::terminal_attached()) {
    throw UsageError("gc --delete", "there is no terminal to ask for confirmation on",
                     "list first with `gpumachine gc`, then pass --yes to delete what it lists");
  }
  std::set<std::string> regions(opts.regions.begin(), opts.regions.end());
  for (const store::Entry& e : ctx.store().list()) {
    if (!e.record) {
      scope.unreadable_names.insert(e.name);
      continue;
    }
    scope.known_ids.insert(e.record->id);
    if (opts.regions.empty() && e.record->driver == "ec2") {
      std::string region = e.record->driver_config.value("region", "");
      if (!region.empty()) {
        regions.insert(region);
      }
    }
  }
  if (opts.regions.empty()) {
    if (std::optional<std::string> region = aws::find_region()) {
      regions.insert(*region);
    }
  }
  if (regions.empty()) {
    throw UsageError("gc", "no region to scan", "pass --region R (repeatable), or set AWS_REGION");
  }
  scope.home_id = ctx.store().home_id();
  std::vector<drivers::ec2::Orphan> found =
      drivers::ec2::find_orphans({regions.begin(), regions.end()}, scope);
  std::vector<drivers::ec2::Orphan> orphans, kept;
  for (drivers::ec2::Orphan& o : found) {
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
    actions = drivers::ec2::delete_orphans(orphans);
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
                          {"home", scope.home_id},
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
