// `gpumachine autostop NAME DURATION|off [--action stop|terminate] [--max-lifetime 8h]`: installs
// or updates the host's autostop agent over SSH (one round trip), or disarms it, and keeps the
// setting in the record so `ls` shows it and stop/start keep it. Where the driver can choose
// what the host's power-off becomes (ec2), the action is set there first.
#include "cli/verbs.h"

#include "cli/power.h"

#include "cost/autostop.h"
#include "gm/driver.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "machine/machine_host.h"
#include "util/log.h"

namespace gm::cli {

namespace {

struct AutostopOptions {
  std::string name;
  std::string idle;
  std::string action;
  std::string max_lifetime;
  bool allow_poweroff = false;
};

int run_autostop(Context& ctx, const AutostopOptions& opts) {
  bool off = opts.idle == "off";
  std::optional<cost::AutostopSettings> settings;
  if (!off) {
    settings = cost::parse_autostop_flags(opts.idle, opts.action, opts.max_lifetime);
  } else if (!opts.action.empty() || !opts.max_lifetime.empty()) {
    throw UsageError("autostop off", "takes no --action or --max-lifetime");
  }
  store::MachineLock lock = ctx.store().lock(opts.name, "autostop");
  MachineRecord record = machine::load_for_ssh(ctx.store(), opts.name, "autostop", &lock);
  std::unique_ptr<Driver> driver = find_driver(record.driver).make();
  if (settings) {
    cost::check_poweroff_allowed(record, driver->capabilities().power, opts.allow_poweroff);
  }
  if (settings && !driver->capabilities().power_off_action &&
      settings->action != cost::AutostopAction::stop) {
    throw UsageError("autostop --action " + std::string(cost::to_string(settings->action)),
                     "a " + record.driver + " machine only powers off",
                     "use --action stop (the default)");
  }
  if (settings) {  // before anything changes: the user may rather `rm` when done
    warn_if_off_still_bills(*driver, record, "autostop powers the machine off when idle, but ");
  }
  std::unique_ptr<ssh::Session> session = machine::connect(record);
  if (settings && driver->capabilities().power_off_action) {
    // The provider first: the host's power-off must become what was asked before it can fire.
    machine::MachineHost host(ctx.store(), lock);
    driver->set_power_off_action(record, host, cost::to_string(settings->action));
    host.finish();
  }
  cost::apply_on_host(*session, settings, "machine '" + record.name + "'");
  cost::store_autostop(record, settings);
  cost::set_agent_on_host(record, true);
  ctx.store().save(lock, record);
  if (ctx.json()) {
    ctx.out().print_json(
        {{"name", record.name},
         {"autostop", settings ? cost::to_json(*settings) : nlohmann::json(nullptr)},
         {"shutdown_behavior", record.cost.power_off_action.empty()
                                   ? nlohmann::json(nullptr)
                                   : nlohmann::json(record.cost.power_off_action)}});
  } else {
    ctx.out().print_line(settings
                             ? "autostop for '" + record.name + "': " + cost::describe(*settings) +
                                   ", checked on the host once a minute"
                             : "autostop for '" + record.name + "': off");
  }
  return 0;
}

}  // namespace

void setup_autostop(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "autostop", "power a machine off when idle (decided on the host), or turn that off");
  auto opts = std::make_shared<AutostopOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("idle", opts->idle, "idle time before the power-off (30m, 1h) or 'off'")
      ->required();
  sub->add_option("--action", opts->action,
                  "stop (default: the disk stays) or terminate (everything goes)");
  sub->add_option("--max-lifetime", opts->max_lifetime,
                  "power off after this much running time regardless of activity (8h)");
  sub->add_flag("--allow-poweroff", opts->allow_poweroff,
                "allow it on a generic machine (nothing can start it again)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_autostop(ctx, *opts); };
  });
}

}  // namespace gm::cli
