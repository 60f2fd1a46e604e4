// The lifecycle verbs share one shape (libmachine's runAction): lock the machine, ask its driver
// for the transition, wait where --wait says, save the record, report. start.cc, stop.cc,
// kill.cc and restart.cc each hold only their row.
#include "cli/power.h"

#include "gm/error.h"
#include "machine/machine_host.h"
#include "util/log.h"

namespace gm::cli {

void setup_power_verb(CLI::App& app, Dispatch& dispatch, const PowerVerb& verb) {
  struct Options {
    std::string name;
    std::string wait = "ssh";
  };
  CLI::App* sub = app.add_subcommand(verb.name, verb.help);
  auto opts = std::make_shared<Options>();
  sub->add_option("name", opts->name, "machine name")->required();
  if (verb.has_wait) {
    sub->add_option("--wait", opts->wait, "where to stop: running or ssh (default ssh)");
  }
  sub->callback([&dispatch, opts, verb] {
    dispatch.run = [opts, verb](Context& ctx) {
      if (opts->wait != "running" && opts->wait != "ssh") {
        throw UsageError("--wait " + opts->wait, "unknown target",
                         "use --wait running or --wait ssh");
      }
      store::MachineLock lock = ctx.store().lock(opts->name, verb.name);
      MachineRecord record = ctx.store().load(opts->name);
      std::unique_ptr<Driver> driver = find_driver(record.driver).make();
      machine::MachineHost host(ctx.store(), lock);
      host.set_wait_target(opts->wait);
      ((*driver).*verb.action)(record, host);
      host.finish();
      ctx.store().save(lock, record);
      if (ctx.json()) {
        ctx.out().print_json(machine_summary(record));
      } else {
        ctx.out().print_line(std::string(verb.done) + " machine '" + record.name + "'" +
                             (record.ssh.host.empty() ? "" : " at " + record.ssh.host));
      }
      if (verb.powers_off) {
        warn_if_off_still_bills(*driver, record, "");
      }
      return 0;
    };
  });
}

void warn_if_off_still_bills(const Driver& driver, const MachineRecord& record,
                             const std::string& when) {
  if (!driver.capabilities().stop_saves_compute) {
    util::warn(when + "a powered-off " + record.driver +
               " machine is still billed in full; `gpumachine rm " + record.name +
               "` ends the billing");
  }
}

}  // namespace gm::cli
