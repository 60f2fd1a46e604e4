// `gpumachine compose NAME [--dir DIR] [--background] -- ARGS...`: `docker compose ARGS` on the
// machine in the project's synced folder (so relative bind mounts find the project's files), and
// after a successful `up`, the ports its containers publish forwarded to this machine's loopback
// the way `jupyter` forwards its port (foreground until Ctrl-C, or --background).
#include "cli/run.h"
#include "cli/tunnel.h"
#include "cli/verbs.h"
#include "gm/error.h"
#include "ssh/forward.h"

#include <algorithm>

namespace gm::cli {

namespace {

struct ComposeOptions {
  std::string name;
  std::string dir = ".";
  bool background = false;
  std::vector<std::string> args;
};

int run_compose(Context& ctx, const ComposeOptions& o) {
  if (o.args.empty()) {
    throw UsageError("compose", "no compose arguments given",
                     "put them after --: gpumachine compose " + o.name + " -- up -d");
  }
  run::Project project = run::open_project(o.dir);
  ProjectOnMachine on = open_project_on(ctx, o.name, project, "compose");
  upload_project(project, on.target);
  run::Jobs jobs(*on.session, o.name);
  int status = jobs.compose(
      on.target.host.project_dir, o.args, [](std::string_view c) { write_all(stdout, c); },
      [](std::string_view c) { write_all(stderr, c); });
  auto verb = std::find_if(o.args.begin(), o.args.end(),
                           [](const std::string& a) { return a.empty() || a[0] != '-'; });
  if (status != 0 || verb == o.args.end() || *verb != "up") {
    return status;
  }
  std::vector<int> ports = jobs.published_ports(on.target.host.project_dir);
  if (ports.empty()) {
    return exit_code::k_ok;
  }
  ssh::Forwarder forwarder(same_port_forwards(ports), tunnel_options(ctx, o.name));
  TunnelInfo info;
  for (const ssh::ForwardSpec& spec : forwarder.specs()) {  // a URL per published port
    info.urls.push_back("http://127.0.0.1:" + std::to_string(spec.local_port) + "/");
  }
  info.extra = {{"ports", ports}};
  return run_tunnel(ctx, o.name, forwarder, std::move(on.session), info, o.background);
}

}  // namespace

void setup_compose(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "compose", "docker compose on the machine in the synced project; forwards published ports");
  auto opts = std::make_shared<ComposeOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("args", opts->args, "docker compose arguments (after --)");
  sub->add_option("--dir", opts->dir, "project folder (default: the current one)");
  sub->add_flag("--background", opts->background,
                "after `up`, forward the ports from a background process and return");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_compose(ctx, *opts); };
  });
}

}  // namespace gm::cli
