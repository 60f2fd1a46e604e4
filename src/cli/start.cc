// `gpumachine start NAME`: start a stopped machine and wait until SSH answers (or --wait running).
#include "cli/verbs.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/machine_host.h"

namespace gm::cli {

namespace {
struct PowerOptions {
  std::string name;
  std::string wait = "ssh";
};
}  // namespace

void setup_start(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "start", "start a stopped machine and wait until SSH answers (or --wait running)");
  auto opts = std::make_shared<PowerOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("--wait", opts->wait, "where to stop: running or ssh (default ssh)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) {
      store::MachineLock lock = ctx.store().lock(opts->name, "start");
      MachineRecord record = ctx.store().load(opts->name);
      std::unique_ptr<Driver> driver = find_driver(record.driver).make();
      machine::MachineHost host(ctx.store());
      if (opts->wait != "running" && opts->wait != "ssh") {
        throw UsageError("--wait " + opts->wait, "unknown target",
                         "use --wait running or --wait ssh");
      }
      host.set_wait_target(opts->wait);
      driver->start(record, host);
      host.finish();
      ctx.store().save(record);
      if (ctx.json()) {
        ctx.out().print_json(machine_summary(record));
      } else {
        ctx.out().print_line("started machine '" + record.name + "'" +
                             (record.ssh.host.empty() ? "" : " at " + record.ssh.host));
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
