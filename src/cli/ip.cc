// `gpumachine ip NAME`: the machine's address.
#include "cli/verbs.h"

#include "gm/error.h"

namespace gm::cli {

void setup_ip(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("ip", "print a machine's IP address");
  auto name = std::make_shared<std::string>();
  sub->add_option("name", *name, "machine name")->required();
  sub->callback([&dispatch, name] {
    dispatch.run = [name](Context& ctx) {
      MachineRecord record = ctx.store().load(*name);
      if (record.ssh.host.empty()) {
        throw Error("machine '" + *name + "'", "has no address yet", {},
                    "is it running? `gpumachine status " + *name + "`");
      }
      if (ctx.json()) {
        ctx.out().print_json({{"name", record.name}, {"ip", record.ssh.host}});
      } else {
        ctx.out().print_line(record.ssh.host);
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
