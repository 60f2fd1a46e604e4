// `gpumachine stop NAME`: stop a machine (the disk is kept; compute billing stops).
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

void setup_stop(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub =
      app.add_subcommand("stop", "stop a machine (the disk is kept; compute billing stops)");
  auto opts = std::make_shared<PowerOptions>();
  sub->add_option("name", opts->name, "machine name")->required();

  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) {
      store::MachineLock lock = ctx.store().lock(opts->name, "stop");
      MachineRecord record = ctx.store().load(opts->name);
      std::unique_ptr<Driver> driver = find_driver(record.driver).make();
      machine::MachineHost host(ctx.store());

      driver->stop(record, host);
      host.finish();
      ctx.store().save(record);
      if (ctx.json()) {
        ctx.out().print_json(machine_summary(record));
      } else {
        ctx.out().print_line("stopped machine '" + record.name + "'" +
                             (record.ssh.host.empty() ? "" : " at " + record.ssh.host));
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
