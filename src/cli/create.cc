// `gpumachine create --driver D NAME`: validate everything offline, then let the driver create
// (or register) the machine, save the record, and print the timings of each phase.
#include "cli/verbs.h"

#include "cli/machine_file.h"
#include "cost/autostop.h"
#include "cost/cost.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/cluster_nodes.h"
#include "machine/machine_host.h"
#include "machine/setup.h"
#include "store/store.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/prompt.h"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>
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
  std::string wait;  // "running", "ssh" or "gpu" (provision and probe; the default)
  bool no_provision = false;
  bool no_probe = false;
  ProvisionFlags provision;
  std::list<DriverFlag> flags;     // std::list: CLI11 keeps pointers into the elements
  double max_price_per_hour = -1;  // < 0: not given
  std::string autostop;
  std::string autostop_action;
  std::string max_lifetime;
  bool allow_poweroff = false;
  int nodes = 0;  // --nodes N: a cluster of N machines; 0: one machine
};

/// Create options that are not driver flags, accepted in machine files too.
const std::set<std::string> k_general_keys = {
    "driver",         "wait",           "no-provision",  "no-probe",        "driver-branch",
    "driver-flavour", "verify-image",   "autostop",      "autostop-action", "max-lifetime",
    "no-gsp",         "allow-poweroff", "docker-mirror", "cuda-mirror",     "toolkit-mirror"};

/// The general keys that are switches (the rest take a value).
const std::set<std::string> k_general_switches = {"no-provision", "no-probe", "no-gsp"};

/// Flag names (and aliases) of every driver, each mapped to its canonical name and driver.
struct FlagIndex {
  std::map<std::string, std::pair<std::string, std::string>>
      by_name;                     // name -> {canonical, driver}
  std::set<std::string> switches;  // names and aliases of driver switches
  MachineFileKeys keys() const {
    MachineFileKeys out{k_general_keys, k_general_switches};
    for (const auto& [name, _] : by_name) {
      out.known.insert(name);
    }
    out.switches.insert(switches.begin(), switches.end());
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
      if (spec.is_switch) {
        index.switches.insert(spec.name);
        index.switches.insert(spec.aliases.begin(), spec.aliases.end());
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
    if (k_general_keys.contains(key)) {
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

/// Fills general options the command line left unset from the machine file, then config.yaml.
CreateOptions with_file_defaults(const CreateOptions& cli, const Options& file,
                                 const Options& defaults) {
  Options general;
  for (const Options* source : {&defaults, &file}) {
    for (const auto& [key, values] : *source) {
      if (k_general_keys.contains(key) && !values.empty()) {
        general[key] = values;
      }
    }
  }
  CreateOptions out = cli;
  auto text = [&](const char* key, std::string& field) {
    if (field.empty() && general.contains(key)) {
      field = general[key].back();
    }
  };
  auto flag = [&](const char* key, bool& field) {
    if (!field && general.contains(key)) {
      field = general[key].back() == "true";
    }
  };
  text("driver", out.driver);
  text("wait", out.wait);
  text("autostop", out.autostop);
  text("autostop-action", out.autostop_action);
  text("max-lifetime", out.max_lifetime);
  text("driver-flavour", out.provision.driver_flavour);
  text("verify-image", out.provision.verify_image);
  text("docker-mirror", out.provision.mirrors.docker);
  text("cuda-mirror", out.provision.mirrors.cuda);
  text("toolkit-mirror", out.provision.mirrors.toolkit);
  flag("no-provision", out.no_provision);
  flag("no-probe", out.no_probe);
  flag("no-gsp", out.provision.no_gsp);
  flag("allow-poweroff", out.allow_poweroff);
  if (out.provision.driver_branch == 0 && general.contains("driver-branch")) {
    try {
      out.provision.driver_branch = std::stoi(general["driver-branch"].back());
    } catch (const std::exception&) {
      throw UsageError("driver-branch: " + general["driver-branch"].back(),
                       "not a driver branch number", "e.g. driver-branch: 580");
    }
  }
  return out;
}

std::pair<MachineRecord, std::unique_ptr<Driver>> configure_new(Context& ctx,
                                                                const CreateOptions& opts,
                                                                const Options& defaults,
                                                                const Options& file);
int finish_create(Context& ctx, const store::MachineLock& lock, const CreateOptions& opts,
                  MachineRecord& record, Driver& driver, bool resumed);

/// create with the machine file's options already read (`cli.file` names their source).
int create_with(Context& ctx, const CreateOptions& cli, const Options& file) {
  // Everything that can be checked offline is checked before any connection.
  store::validate_name(cli.name);
  std::filesystem::path config_path = ctx.store().home() / "config.yaml";
  Options defaults;
  if (std::filesystem::exists(config_path)) {
    defaults = load_machine_file(config_path, flag_index().keys());
  }
  CreateOptions opts = with_file_defaults(cli, file, defaults);
  if (opts.wait.empty()) {
    opts.wait = "gpu";
  }
  if (opts.wait != "running" && opts.wait != "ssh" && opts.wait != "gpu") {
    throw UsageError("--wait " + opts.wait, "unknown target",
                     "use --wait running, --wait ssh or --wait gpu (the default)");
  }
  MachineRecord record;
  std::unique_ptr<Driver> driver;
  // A directory without a record (a kill before the first save) is replaced by the first save.
  if (!ctx.store().has_record(opts.name)) {
    std::tie(record, driver) = configure_new(ctx, opts, defaults, file);
  }
  store::MachineLock lock = ctx.store().lock(opts.name, "create");
  bool resumed = false;
  if (ctx.store().has_record(opts.name)) {
    MachineRecord existing = ctx.store().load(opts.name);
    // Drivers that can resume mark an unfinished create in the record (ec2: a create that was
    // interrupted or killed); anything else is a finished machine.
    if (!existing.progress.incomplete) {
      throw Error("machine '" + opts.name + "'", "already exists", {},
                  "pick another name, or remove it first: `gpumachine rm " + opts.name + "`");
    }
    util::info("resuming the unfinished create of '" + opts.name + "' (" + existing.driver +
               "); options given now are ignored");
    record = std::move(existing);
    driver = find_driver(record.driver).make();
    resumed = true;
  } else if (!driver) {
    std::tie(record, driver) = configure_new(ctx, opts, defaults, file);  // removed meanwhile
  }
  return finish_create(ctx, lock, opts, record, *driver, resumed);
}

int run_create(Context& ctx, const CreateOptions& cli) {
  store::validate_name(cli.name);
  Options file;
  if (!cli.file.empty()) {
    file = load_machine_file(cli.file, flag_index().keys());
  }
  return create_with(ctx, cli, file);
}

/// `--nodes N`: a driver that can place machines together, N of 2 or more, and only what this
/// version does for a cluster.
void check_cluster_options(const CreateOptions& opts, const DriverInfo& info, Driver& driver) {
  if (!driver.capabilities().placement_groups) {
    std::string able;
    for (const DriverInfo& other : driver_registry()) {
      if (other.make()->capabilities().placement_groups) {
        able += (able.empty() ? "" : " or ") + ("--driver " + other.name);
      }
    }
    throw UsageError("--nodes", "the " + info.name + " driver cannot create clusters",
                     "it cannot place machines together; use " + able);
  }
  if (opts.nodes < 2 || opts.nodes > 64) {
    throw UsageError("--nodes " + std::to_string(opts.nodes), "a cluster has 2 to 64 nodes",
                     "drop --nodes for one machine");
  }
  if (!opts.autostop.empty() || !opts.max_lifetime.empty()) {
    throw UsageError("--autostop/--max-lifetime with --nodes", "not available for clusters yet",
                     "stop the cluster with `gpumachine stop " + opts.name + "`");
  }
}

std::pair<MachineRecord, std::unique_ptr<Driver>> configure_new(Context& ctx,
                                                                const CreateOptions& opts,
                                                                const Options& defaults,
                                                                const Options& file) {
  // `gpumachine create gpu1` is the product's first example: the registry names the default.
  const DriverInfo& info = opts.driver.empty() ? default_driver() : find_driver(opts.driver);
  FlagIndex index = flag_index();
  std::string config_path = (ctx.store().home() / "config.yaml").string();
  Options options = overlay(overlay(file_options(defaults, index, info.name, config_path, false),
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
  if (opts.nodes != 0) {
    check_cluster_options(opts, info, *driver);
    record.cluster = Cluster{.size = opts.nodes};
  }
  driver->configure(options, record);
  // The machine keeps its driver choices: the boot-time start below and every later `provision`
  // install what they name (machine::remembered_overrides).
  record.provision.overrides = provision::driver_overrides_to_json(opts.provision.overrides());
  // A hint for cloud drivers: provisioning follows, so package installation may start at boot.
  record.provision.at_boot = opts.wait == "gpu" && !opts.no_provision;
  // Cost control, still offline: the setting goes into the record before the driver launches
  // (shutdown_behavior), and an over-budget type is refused before any call.
  std::optional<cost::AutostopSettings> autostop =
      cost::parse_autostop_flags(opts.autostop, opts.autostop_action, opts.max_lifetime);
  if (autostop) {
    cost::check_poweroff_allowed(record, driver->capabilities().power, opts.allow_poweroff);
    if (opts.wait == "running") {
      throw UsageError(
          "--autostop/--max-lifetime with --wait running",
          "the agent is installed over SSH, which --wait running does not wait for",
          "use --wait ssh, or set it later with `gpumachine autostop " + opts.name + "`");
    }
  }
  cost::store_autostop(record, autostop);
  std::optional<double> max_price;
  if (opts.max_price_per_hour >= 0) {
    max_price = opts.max_price_per_hour;
  }
  if (std::optional<PriceQuote> quote = driver->quote(record, ctx.store().home())) {
    cost::enforce_max_price(*quote, max_price);
    if (!cost::confirm_launch(*quote, ctx.globals().yes, util::terminal_attached(), util::info,
                              util::ask_yes_no)) {
      throw Error("create " + opts.name, "cancelled: nothing was launched");
    }
  } else if (max_price) {
    throw UsageError("--max-price-per-hour",
                     "needs a driver with instance types; " + record.driver + " has none");
  }
  return {std::move(record), std::move(driver)};
}

/// Rethrows a failure of create so that it names the machine; a Ctrl-C/SIGTERM also says how to
/// go on (\a next) and which instance is still billing. Other exceptions pass unchanged.
[[noreturn]] void rethrow_for_machine(const std::exception& failure, const MachineRecord& record,
                                      const std::string& next) {
  const auto* error = dynamic_cast<const Error*>(&failure);
  if (error == nullptr) {
    throw;
  }
  const std::string machine = "machine '" + record.name + "'";
  std::string subject = error->subject().find("'" + record.name + "'") == std::string::npos
                            ? machine + ": " + error->subject()
                            : error->subject();
  if (dynamic_cast<const InterruptedError*>(error) == nullptr) {
    throw Error(std::move(subject), error->problem(), error->cause(), error->hint(),
                error->exit_code());
  }
  std::string billing;
  for (const Resource& r : record.resources) {
    if (r.kind == "instance" && r.status != "deleted") {
      billing = "; instance " + r.id + (r.region.empty() ? "" : " (" + r.region + ")") +
                " is left running and billing until then";
    }
  }
  throw Error(std::move(subject), "stopped by a signal", {}, next + billing, error->exit_code());
}

/// Provisioning and the GPU probe (`--wait gpu`, the default); returns the probe's verdict.
int provision_and_probe(const CreateOptions& opts, MachineRecord& record,
                        machine::MachineHost& host) {
  machine::provision_machine(record, host, opts.provision.overrides());
  if (opts.no_probe || !machine::has_nvidia_gpu(record)) {
    return 0;
  }
  probe::ProbeOptions probe_options;
  probe_options.expected_gpus = machine::expected_gpus(record);
  probe::ProbeResult result = machine::probe_machine(record, host, probe_options);
  int status = probe::verdict_exit_code(result);
  if (status != 0) {
    util::warn("machine '" + record.name + "' was created but its GPU probe says: " +
               probe::gpu_summary(result.host) + "; see `gpumachine probe " + record.name + "`");
  }
  return status;
}

/// provision_and_probe() on every node of a cluster at once, each over its own sessions; the
/// record keeps node 0's facts and probe. Returns the first failing node's verdict.
int provision_and_probe_nodes(Context& ctx, const store::MachineLock& lock,
                              const CreateOptions& opts, MachineRecord& record) {
  std::mutex mutex;
  std::vector<int> ranks = machine::node_ranks(record);
  std::vector<int> statuses(ranks.size(), 0);
  std::vector<std::exception_ptr> failures(ranks.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    threads.emplace_back([&, i] {
      int rank = ranks[i];
      MachineRecord node = machine::node_record(record, rank);
      machine::MachineHost host(ctx.store(), "node " + std::to_string(rank) + ": ",
                                [&, rank](const MachineRecord& saved) {
                                  std::lock_guard guard(mutex);
                                  if (rank == 0) {
                                    record.facts = saved.facts;
                                    record.provision = saved.provision;
                                  }
                                  ctx.store().save(lock, record);
                                });
      try {
        statuses[i] = provision_and_probe(opts, node, host);
      } catch (...) {
        failures[i] = std::current_exception();
      }
      host.finish();
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  for (const std::exception_ptr& failure : failures) {
    if (failure) {
      std::rethrow_exception(failure);
    }
  }
  for (int status : statuses) {
    if (status != 0) {
      return status;
    }
  }
  return 0;
}

int finish_create(Context& ctx, const store::MachineLock& lock, const CreateOptions& opts,
                  MachineRecord& record, Driver& driver, bool resumed) {
  machine::MachineHost host(ctx.store(), lock);
  host.set_wait_target(opts.wait == "running" ? "running" : "ssh");
  bool assume_yes = ctx.globals().yes;
  host.set_confirm([assume_yes](const std::string& question) {
    return assume_yes || (util::terminal_attached() && util::ask_yes_no(question));
  });
  try {
    driver.create(record, host);
  } catch (const std::exception& e) {
    host.finish();
    // A driver that saved nothing created nothing: leave no record behind. A cloud driver
    // that saved keeps its record so `create` can resume and `rm` can clean up, unless it
    // rolled everything back itself.
    bool kept = !((!host.saved() && !resumed) || record.progress.rolled_back);
    if (!kept) {
      ctx.store().remove(lock, opts.name);
    }
    rethrow_for_machine(
        e, record,
        kept ? "resume with `gpumachine create " + record.name + "`, or undo with `gpumachine rm " +
                   record.name + "`"
             : "nothing was kept; run `gpumachine create " + record.name + "` again to start over");
  }
  host.finish();
  ctx.store().save(lock, record);  // the machine exists: keep it even if provisioning fails
  // Autostop holds from the moment SSH answers, whatever provisioning then does.
  machine::install_autostop(record, host);

  int status = 0;
  if (opts.wait == "gpu" && !opts.no_provision) {
    try {
      status = record.cluster ? provision_and_probe_nodes(ctx, lock, opts, record)
                              : provision_and_probe(opts, record, host);
    } catch (const std::exception& e) {
      host.finish();
      rethrow_for_machine(e, record,
                          "the machine exists; resume with `gpumachine provision " + record.name +
                              "`, or undo with `gpumachine rm " + record.name + "`");
    }
  }
  double total = 0;
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [phase, seconds] : host.timings()) {
    timings[phase] = seconds;
    total += seconds;
  }
  record.timings = timings;
  ctx.store().save(lock, record);

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
  return status;
}

}  // namespace

MachineFileKeys machine_file_keys() {
  return flag_index().keys();
}

int create_machine(Context& ctx, const std::string& name, const Options& file,
                   const std::string& source) {
  CreateOptions cli;
  cli.name = name;
  cli.file = source;
  return create_with(ctx, cli, file);
}

void setup_create(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("create", "create (or register) a machine");
  auto opts = std::make_shared<CreateOptions>();
  sub->add_option("name", opts->name, "machine name: a-z, 0-9 and '-', at most 63")->required();
  std::string drivers;
  for (const DriverInfo& info : driver_registry()) {
    drivers += (drivers.empty() ? "" : ", ") + info.name;
  }
  sub->add_option("-d,--driver", opts->driver, "driver: " + drivers + " (default ec2)");
  sub->add_option("--wait", opts->wait,
                  "where create stops: running (the provider says so), ssh (SSH answers), or "
                  "gpu (provisioned and probed; the default)");
  sub->add_flag("--no-provision", opts->no_provision,
                "skip installing the NVIDIA driver, Docker and the container toolkit");
  sub->add_flag("--no-probe", opts->no_probe, "skip the GPU probe after provisioning");
  opts->provision.add_to(*sub);
  sub->add_option("-f,--file", opts->file,
                  "machine file (YAML): create options keyed by flag name without dashes");
  sub->add_option("--max-price-per-hour", opts->max_price_per_hour,
                  "refuse types whose on-demand price (USD/hour) is above this");
  sub->add_option("--autostop", opts->autostop,
                  "power off after this much idle time (30m); decided on the host");
  sub->add_option("--autostop-action", opts->autostop_action,
                  "what the power-off becomes: stop (default) or terminate");
  sub->add_option("--max-lifetime", opts->max_lifetime,
                  "power off after this much running time regardless of activity (8h)");
  sub->add_option("--nodes", opts->nodes,
                  "a cluster of N machines placed together (docs/clusters.md); ec2 only");
  sub->add_flag("--allow-poweroff", opts->allow_poweroff,
                "allow autostop on a machine nothing can start again (generic)");
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
