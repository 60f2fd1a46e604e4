// `gpumachine ssh-allow NAME [--cidr CIDR]`: lets SSH in from this computer's current public
// address (or CIDR) instead of the one the machine's firewall admits, e.g. after the laptop moved
// to another network (ec2: replaces the rules of the machine's own security group).
#include "cli/verbs.h"

#include "gm/driver.h"
#include "machine/machine_host.h"

namespace gm::cli {

namespace {

struct SshAllowOptions {
  std::string name;
  std::string cidr;
};

int run_ssh_allow(Context& ctx, const SshAllowOptions& opts) {
  store::MachineLock lock = ctx.store().lock(opts.name, "ssh-allow");
  MachineRecord record = ctx.store().load(opts.name);
  std::unique_ptr<Driver> driver = find_driver(record.driver).make();
  machine::MachineHost host(ctx.store(), lock);
  auto [old, now] = driver->allow_ssh_from(record, host, opts.cidr);
  host.finish();
  if (ctx.json()) {
    ctx.out().print_json({{"name", record.name}, {"cidr", now}, {"replaced", old}});
  } else {
    ctx.out().print_line(old == now ? "SSH to '" + record.name + "' is already allowed from " + now
                                    : "SSH to '" + record.name + "' is now allowed from " + now +
                                          (old.empty() ? "" : " (instead of " + old + ")"));
  }
  return 0;
}

}  // namespace

void setup_ssh_allow(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "ssh-allow", "let SSH in from this computer's current address (after a network change)");
  auto opts = std::make_shared<SshAllowOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("--cidr", opts->cidr,
                  "address range to allow instead (default: this computer's public address /32)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_ssh_allow(ctx, *opts); };
  });
}

}  // namespace gm::cli
