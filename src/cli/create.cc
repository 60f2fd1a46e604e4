// `gpumachine create --driver D NAME`: validate everything offline, then let the driver create
// (or register) the machine, save the record, and print the timings of each phase.
#include "cli/verbs.h"

#include "cli/machine_file.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/machine_host.h"
#include "store/store.h"
#include "util/crypto.h"
#include "util/log.h"

#include <cstdio>
#include <filesystem>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <tuple>

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
  std::string file;
  std::string wait = "ssh";     // where create stops: "running" or "ssh"
  bool no_provision = false;    // accepted; provisioning is not wired into create yet
  std::list<DriverFlag> flags;  // std::list: CLI11 keeps pointers into the elements
};

/// Flag names (and aliases) of every driver, each mapped to its canonical name and driver.
struct FlagIndex {
  std::map<std::string, std::pair<std::string, std::string>>
      by_name;  // name -> {canonical, driver}
  std::set<std::string> keys() const {
    std::set<std::string> out = {"driver"};
    for (const auto& [name, _] : by_name) {
      out.insert(name);
    }
    return out;
  }
};

FlagIndex flag_index() {
  FlagIndex index;
  for (const DriverInfo& info : driver_registry()) {
    for (const FlagSpec& spec : info.flags) {
      index.by_name[spec.name] = {spec.name, info.name};
      for (const std::string& alias : spec.aliases) {
        index.by_name[alias] = {spec.name, info.name};
      }
    }
  }
  return index;
}

/// Options from a machine file with aliases resolved; `strict` refuses other drivers' keys
/// (a -f file), otherwise they are dropped (config.yaml holds defaults for every driver).
Options file_options(const Options& raw, const FlagIndex& index, const std::string& driver,
                     const std::string& source, bool strict) {
  Options out;
  for (const auto& [key, values] : raw) {
    if (key == "driver") {
      continue;
    }
    const auto& [canonical, owner] = index.by_name.at(key);
    if (owner != driver) {
      if (strict) {
        throw UsageError(source + ": key '" + key + "'",
                         "is an option of the " + owner + " driver, not of " + driver,
                         "remove it, or set `driver: " + owner + "`");
      }
      continue;
    }
    out[canonical] = values;
  }
  return out;
}

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

std::pair<MachineRecord, std::unique_ptr<Driver>> configure_new(Context& ctx,
                                                                const CreateOptions& opts);
int finish_create(Context& ctx, const CreateOptions& opts, MachineRecord& record, Driver& driver,
                  bool resumed);

int run_create(Context& ctx, const CreateOptions& opts) {
  // Everything that can be checked offline is checked before any connection.
  store::validate_name(opts.name);
  if (opts.wait != "running" && opts.wait != "ssh") {
    throw UsageError("--wait " + opts.wait, "unknown target", "use --wait running or --wait ssh");
  }
  store::MachineLock lock = ctx.store().lock(opts.name, "create");
  std::optional<MachineRecord> resumed;
  if (ctx.store().exists(opts.name)) {
    MachineRecord existing = ctx.store().load(opts.name);
    // Drivers that can resume mark an unfinished create in their config (ec2: a create that
    // was interrupted or killed); anything else is a finished machine.
    if (!existing.driver_config.value("create_incomplete", false)) {
      throw Error("machine '" + opts.name + "'", "already exists", {},
                  "pick another name, or remove it first: `gpumachine rm " + opts.name + "`");
    }
    util::info("resuming the unfinished create of '" + opts.name + "' (" + existing.driver +
               "); options given now are ignored");
    resumed = std::move(existing);
  }
  MachineRecord record;
  std::unique_ptr<Driver> driver;
  if (resumed) {
    record = std::move(*resumed);
    driver = find_driver(record.driver).make();
  } else {
    std::tie(record, driver) = configure_new(ctx, opts);
  }
  return finish_create(ctx, opts, record, *driver, resumed.has_value());
}

std::pair<MachineRecord, std::unique_ptr<Driver>> configure_new(Context& ctx,
                                                                const CreateOptions& opts) {
  FlagIndex index = flag_index();
  std::filesystem::path config_path = ctx.store().home() / "config.yaml";
  Options defaults, file;
  if (std::filesystem::exists(config_path)) {
    defaults = load_machine_file(config_path, index.keys());
  }
  if (!opts.file.empty()) {
    file = load_machine_file(opts.file, index.keys());
  }
  std::string driver_name = opts.driver;
  for (const Options* source : {&file, &defaults}) {
    if (driver_name.empty() && source->contains("driver")) {
      driver_name = source->at("driver").back();
    }
  }
  if (driver_name.empty()) {
    throw UsageError("--driver", "required",
                     "choose a driver, e.g. --driver generic --generic-ip-address HOST");
  }
  const DriverInfo& info = find_driver(driver_name);
  Options options =
      overlay(overlay(file_options(defaults, index, info.name, config_path.string(), false),
                      file_options(file, index, info.name, opts.file, true)),
              collect_options(opts, info));
  for (auto it = options.begin(); it != options.end();) {
    // A switch set to false in a file is the same as not giving it.
    it = (it->second.size() == 1 && it->second[0] == "false") ? options.erase(it) : std::next(it);
  }
  MachineRecord record;
  record.name = opts.name;
  record.id = util::uuid4();
  record.driver = info.name;
  // Where a driver that makes its own login key keeps it (generic replaces it with the user's).
  record.ssh.key_path = std::filesystem::absolute(ctx.store().key_path(opts.name)).string();
  std::unique_ptr<Driver> driver = info.make();
  driver->configure(options, record);
  return {std::move(record), std::move(driver)};
}

int finish_create(Context& ctx, const CreateOptions& opts, MachineRecord& record,
                  Driver& driver_ref, bool resumed) {
  Driver* driver = &driver_ref;
  machine::MachineHost host(ctx.store());
  host.set_wait_target(opts.wait);
  try {
    driver->create(record, host);
  } catch (...) {
    host.finish();
    // A driver that saved nothing created nothing: leave no record behind. A cloud driver
    // that saved keeps its record so `create` can resume and `rm` can clean up, unless it
    // rolled everything back itself.
    if ((!host.saved() && !resumed) || record.driver_config.value("rolled_back", false)) {
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
  sub->add_option("-f,--file", opts->file,
                  "machine file (YAML): create options keyed by flag name without dashes");
  sub->add_option("--wait", opts->wait,
                  "where to stop: running (the provider says so) or ssh (SSH answers; default)");
  sub->add_flag("--no-provision", opts->no_provision,
                "do not provision the machine (drivers, toolkit); only create it");
  for (const DriverInfo& info : driver_registry()) {
    for (const FlagSpec& spec : info.flags) {
      DriverFlag& flag = opts->flags.emplace_back();
      flag.driver = info.name;
      flag.name = spec.name;
      std::string names = "--" + spec.name;
      for (const std::string& alias : spec.aliases) {
        names += ",--" + alias;
      }
      std::string help =
          spec.help + (spec.default_value.empty() ? "" : " (default " + spec.default_value + ")");
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
