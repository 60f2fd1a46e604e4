// `gpumachine gc [--region R]... [--delete]`: find cloud resources tagged gpumachine:* that no
// local record owns (a lost home directory, a record deleted by hand, `rm --force`), and remove
// them with --delete.
#include "cli/verbs.h"

#include "aws/endpoints.h"
#include "drivers/ec2/ec2_driver.h"
#include "gm/error.h"
#include "util/log.h"

#include <set>

namespace gm::cli {

namespace {

struct GcOptions {
  std::vector<std::string> regions;
  bool remove = false;
};

int run_gc(Context& ctx, const GcOptions& opts) {
  std::set<std::string> known_ids;
  std::set<std::string> regions(opts.regions.begin(), opts.regions.end());
  for (const store::Entry& e : ctx.store().list()) {
    if (!e.record) {
      continue;
    }
    known_ids.insert(e.record->id);
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
  std::vector<drivers::ec2::Orphan> orphans =
      drivers::ec2::find_orphans({regions.begin(), regions.end()}, known_ids);
  std::vector<std::string> actions;
  if (opts.remove && !orphans.empty()) {
    actions = drivers::ec2::delete_orphans(orphans);
  }
  bool failed = false;
  for (const std::string& a : actions) {
    failed = failed || a.starts_with("FAILED");
  }
  if (ctx.json()) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& o : orphans) {
      rows.push_back({{"kind", o.resource.kind},
                      {"id", o.resource.id},
                      {"region", o.resource.region},
                      {"state", o.resource.state},
                      {"detail", o.resource.detail},
                      {"machine", o.machine}});
    }
    ctx.out().print_json(
        {{"regions", regions}, {"orphans", rows}, {"deleted", opts.remove}, {"actions", actions}});
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& o : orphans) {
      rows.push_back({o.resource.kind, o.resource.id, o.resource.region,
                      o.resource.state.empty() ? "-" : o.resource.state,
                      o.resource.detail.empty() ? "-" : o.resource.detail,
                      o.machine.empty() ? "-" : o.machine});
    }
    if (orphans.empty()) {
      util::info("no orphaned gpumachine resources in " + [&] {
        std::string s;
        for (const std::string& r : regions) {
          s += (s.empty() ? "" : ", ") + r;
        }
        return s;
      }());
    } else {
      ctx.out().print_table({"KIND", "ID", "REGION", "STATE", "DETAIL", "MACHINE"}, rows);
      if (!opts.remove) {
        util::info("run `gpumachine gc --delete` to remove them");
      }
    }
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
      "list (and with --delete remove) cloud resources tagged by gpumachine that no "
      "local record owns");
  auto opts = std::make_shared<GcOptions>();
  sub->add_option("--region", opts->regions,
                  "region to scan (repeatable; default: the regions of your machines and the "
                  "configured region)");
  sub->add_flag("--delete", opts->remove, "remove what was found");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_gc(ctx, *opts); }; });
}

}  // namespace gm::cli
