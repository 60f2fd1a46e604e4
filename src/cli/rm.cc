// `gpumachine rm NAME...`: remove every provider resource the machine owns, then its record.
// Idempotent; --force deletes the record even when the provider cleanup fails.
#include "cli/tunnel.h"
#include "cli/verbs.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/machine_host.h"
#include "util/log.h"

namespace gm::cli {

namespace {

struct RmOptions {
  std::vector<std::string> names;
  bool force = false;
};

}  // namespace

nlohmann::json remove_one(Context& ctx, const std::string& name, bool force) {
  store::MachineLock lock = ctx.store().lock(name, "rm");
  std::optional<MachineRecord> record;
  try {
    record = ctx.store().load(name);
  } catch (const NotFoundError&) {
    throw;
  } catch (const Error& e) {
    // A directory without a record never got as far as the cloud: it goes without --force.
    if (!force && ctx.store().has_record(name)) {
      throw Error("machine '" + name + "'", "cannot read its record", e.what(),
                  "`gpumachine rm --force " + name + "` deletes the local record anyway");
    }
  }
  std::vector<std::string> done;
  std::vector<std::string> left;
  if (record) {
    machine::MachineHost host(ctx.store(), lock);
    try {
      done = find_driver(record->driver).make()->remove(*record, host);
    } catch (const std::exception& e) {  // also a record field of the wrong type
      host.finish();
      if (!force) {
        throw;
      }
      util::warn("machine '" + name + "': " + e.what() +
                 "; deleting the local record anyway (--force)");
      for (const Resource& r : record->resources) {
        if (r.status != "deleted") {
          left.push_back(r.kind + " " + r.id + (r.region.empty() ? "" : " in " + r.region));
          done.push_back("LEFT BEHIND: " + left.back());
        }
      }
    }
  }
  // Background forwards (forward, jupyter, tensorboard) die with the machine: their records live
  // in its directory, so nothing could find or stop them afterwards.
  for (const TunnelRecord& t : list_tunnels(ctx.store(), name)) {
    if (stop_tunnel(t)) {
      done.push_back("stopped the background " + t.kind + " (pid " + std::to_string(t.pid) + ")");
    }
  }
  ctx.store().remove(lock, name);
  done.push_back("deleted the record of '" + name + "'");
  return {{"name", name}, {"removed", true}, {"actions", done}, {"left_behind", left}};
}

void setup_rm(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("rm", "remove machines and every resource they own");
  auto opts = std::make_shared<RmOptions>();
  sub->add_option("names", opts->names, "machine names")->required();
  sub->add_flag("-f,--force", opts->force,
                "delete the record even when cloud cleanup fails (prints what was left)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) {
      for (const std::string& name : opts->names) {
        if (!ctx.store().exists(name)) {
          ctx.store().load(name);  // throws NotFoundError with "did you mean"
        }
      }
      std::string list;
      for (const std::string& n : opts->names) {
        list += (list.empty() ? "" : ", ") + n;
      }
      if (!confirm(ctx, "Remove " + list + " and every resource it owns?")) {
        throw Error("rm " + list, "cancelled: nothing was removed", {},
                    "answer y, or pass --yes to skip the question");
      }
      nlohmann::json results = nlohmann::json::array();
      bool left_behind = false;
      for (const std::string& name : opts->names) {
        results.push_back(remove_one(ctx, name, opts->force));
        left_behind = left_behind || !results.back()["left_behind"].empty();
        if (!ctx.json()) {
          for (const auto& line : results.back()["actions"]) {
            util::info(line.get<std::string>());
          }
          ctx.out().print_line("removed " + name);
        }
      }
      if (ctx.json()) {
        ctx.out().print_json(results);
      }
      if (left_behind) {
        // The record is gone but something may still bill: a script must not read success.
        util::warn(
            "cloud resources were left behind (listed above); remove them by hand, or "
            "with `gpumachine gc --delete` once they are orphans");
        return exit_code::k_failure;
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
