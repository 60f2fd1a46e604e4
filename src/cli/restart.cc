// `gpumachine restart NAME`: reboot and wait until SSH answers again.
#include "cli/verbs.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/machine_host.h"

namespace gm::cli {

void setup_restart(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("restart", "reboot a machine and wait until SSH answers");
  auto name = std::make_shared<std::string>();
  auto wait = std::make_shared<std::string>("ssh");
  sub->add_option("name", *name, "machine name")->required();
  sub->add_option("--wait", *wait, "where to stop: running or ssh (default ssh)");
  sub->callback([&dispatch, name, wait] {
    dispatch.run = [name, wait](Context& ctx) {
      if (*wait != "running" && *wait != "ssh") {
        throw UsageError("--wait " + *wait, "unknown target", "use --wait running or --wait ssh");
      }
      store::MachineLock lock = ctx.store().lock(*name, "restart");
      MachineRecord record = ctx.store().load(*name);
      std::unique_ptr<Driver> driver = find_driver(record.driver).make();
      machine::MachineHost host(ctx.store());
      host.set_wait_target(*wait);
      driver->restart(record, host);
      host.finish();
      ctx.store().save(record);
      if (ctx.json()) {
        ctx.out().print_json({{"name", record.name}, {"state", record.last_state}});
      } else {
        ctx.out().print_line("restarted machine '" + record.name + "'");
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
