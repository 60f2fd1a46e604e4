// `gpumachine create --driver D NAME`: validate everything offline, then let the driver create
// (or register) the machine, save the record, and print the timings of each phase.
#include "cli/verbs.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/machine_host.h"
#include "store/store.h"
#include "util/crypto.h"
#include "util/log.h"

#include <cstdio>
#include <list>

namespace gm::cli {

namespace {

struct DriverFlag {
  std::string driver;
  std::string name;
  CLI::Option* option = nullptr;
  std::vector<std::string> values;
  bool is_set = false;  // for switches
};

struct CreateOptions {
  std::string name;
  std::string driver;
  std::list<DriverFlag> flags;  // std::list: CLI11 keeps pointers into the elements
};

/// Collects the driver flags the user gave, refusing flags of another driver.
Options collect_options(const CreateOptions& opts, const DriverInfo& driver) {
  Options options;
  for (const DriverFlag& f : opts.flags) {
    if (f.option->count() == 0) {
      continue;
    }
    if (f.driver != driver.name) {
      throw UsageError("--" + f.name,
                       "is a flag of the " + f.driver + " driver, not of " + driver.name,
                       "drop it, or use --driver " + f.driver);
    }
    options[f.name] = f.is_set ? std::vector<std::string>{"true"} : f.values;
  }
  return options;
}

int run_create(Context& ctx, const CreateOptions& opts) {
  // Everything that can be checked offline is checked before any connection.
  store::validate_name(opts.name);
  if (opts.driver.empty()) {
    throw UsageError("--driver", "required",
                     "choose a driver, e.g. --driver generic --generic-ip-address HOST");
  }
  const DriverInfo& info = find_driver(opts.driver);
  MachineRecord record;
  record.name = opts.name;
  record.id = util::uuid4();
  record.driver = info.name;
  std::unique_ptr<Driver> driver = info.make();
  driver->configure(collect_options(opts, info), record);

  store::MachineLock lock = ctx.store().lock(opts.name, "create");
  if (ctx.store().exists(opts.name)) {
    throw Error("machine '" + opts.name + "'", "already exists", {},
                "pick another name, or remove it first: `gpumachine rm " + opts.name + "`");
  }

  machine::MachineHost host(ctx.store());
  try {
    driver->create(record, host);
  } catch (...) {
    host.finish();
    // A driver that saved nothing created nothing: leave no record behind. A cloud driver
    // that saved keeps its record so `create` can resume and `rm` can clean up.
    if (!host.saved()) {
      ctx.store().remove(opts.name);
    }
    throw;
  }
  host.finish();
  double total = 0;
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [phase, seconds] : host.timings()) {
    timings[phase] = seconds;
    total += seconds;
  }
  record.timings = timings;
  ctx.store().save(record);

  if (ctx.json()) {
    nlohmann::json doc = machine_summary(record);
    doc["timings"] = timings;
    doc["total_seconds"] = total;
    ctx.out().print_json(doc);
  } else {
    for (const auto& [phase, seconds] : host.timings()) {
      char line[256];
      std::snprintf(line, sizeof line, "  %6.2fs  %s", seconds, phase.c_str());
      util::info(line);
    }
    char line[256];
    std::snprintf(line, sizeof line, "created machine '%s' (%s) at %s@%s:%d in %.1fs",
                  record.name.c_str(), record.driver.c_str(), record.ssh.user.c_str(),
                  record.ssh.host.c_str(), record.ssh.port, total);
    ctx.out().print_line(line);
  }
  return 0;
}

}  // namespace

void setup_create(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("create", "create (or register) a machine");
  auto opts = std::make_shared<CreateOptions>();
  sub->add_option("name", opts->name, "machine name: a-z, 0-9 and '-', at most 63")->required();
  std::string drivers;
  for (const DriverInfo& info : driver_registry()) {
    drivers += (drivers.empty() ? "" : ", ") + info.name;
  }
  sub->add_option("-d,--driver", opts->driver, "driver: " + drivers);
  for (const DriverInfo& info : driver_registry()) {
    for (const FlagSpec& spec : info.flags) {
      DriverFlag& flag = opts->flags.emplace_back();
      flag.driver = info.name;
      flag.name = spec.name;
      std::string names = "--" + spec.name;
      for (const std::string& alias : spec.aliases) {
        names += ",--" + alias;
      }
      std::string help = spec.help + (spec.default_value.empty()
                                          ? ""
                                          : " (default " + spec.default_value + ")");
      if (spec.is_switch) {
        flag.option = sub->add_flag(names, flag.is_set, help);
      } else {
        flag.option = sub->add_option(names, flag.values, help);
        if (!spec.repeatable) {
          flag.option->expected(1);
        }
      }
      flag.option->group(info.name + " driver");
    }
  }
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_create(ctx, *opts); };
  });
}

}  // namespace gm::cli
