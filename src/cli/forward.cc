// `gpumachine forward NAME SPEC... [--background] [--list] [--stop]`: local port forwarding
// over the machine's SSH session (like `ssh -N -L`), kept up across drops.
#include "cli/tunnel.h"
#include "cli/verbs.h"

#include "gm/error.h"
#include "machine/connect.h"

namespace gm::cli {

namespace {

struct ForwardOptions {
  std::string name;
  std::vector<std::string> specs;
  bool background = false;
  bool list = false;
  bool stop = false;
};

int list_forwards(Context& ctx, const std::optional<std::string>& name) {
  std::vector<TunnelRecord> records = list_tunnels(ctx.store(), name);
  if (ctx.json()) {
    nlohmann::json out = nlohmann::json::array();
    for (const TunnelRecord& r : records) {
      nlohmann::json j = to_json(r);
      j["running"] = is_tunnel_running(r);
      out.push_back(j);
    }
    ctx.out().print_json(out);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const TunnelRecord& r : records) {
    std::string forwards;
    for (const ssh::ForwardSpec& s : r.specs) {
      forwards += (forwards.empty() ? "" : ", ") + s.describe();
    }
    rows.push_back({r.machine, std::to_string(r.pid), r.kind, forwards,
                    is_tunnel_running(r) ? "running" : "stale", r.url});
  }
  ctx.out().print_table({"NAME", "PID", "KIND", "FORWARDS", "STATE", "URL"}, rows);
  return 0;
}

int stop_forwards(Context& ctx, const ForwardOptions& opts) {
  // With SPECs only the forwards listening on those local ports stop.
  std::vector<int> ports;
  for (const std::string& text : opts.specs) {
    ports.push_back(ssh::parse_forward_spec(text).local_port);
  }
  ctx.store().load(opts.name);  // NotFoundError for an unknown machine
  nlohmann::json stopped = nlohmann::json::array();
  for (const TunnelRecord& r : list_tunnels(ctx.store(), opts.name)) {
    bool selected = ports.empty() ||
                    std::any_of(r.specs.begin(), r.specs.end(), [&](const ssh::ForwardSpec& s) {
                      return std::find(ports.begin(), ports.end(), s.local_port) != ports.end();
                    });
    if (!selected) {
      continue;
    }
    bool was_running = stop_tunnel(r);
    stopped.push_back({{"pid", r.pid}, {"kind", r.kind}, {"was_running", was_running}});
    if (!ctx.json()) {
      ctx.out().print_line((was_running ? "stopped pid " : "removed stale record of pid ") +
                           std::to_string(r.pid));
    }
  }
  if (ctx.json()) {
    ctx.out().print_json({{"name", opts.name}, {"stopped", stopped}});
  } else if (stopped.empty()) {
    ctx.out().print_line("no background forward on " + opts.name);
  }
  return 0;
}

int run_forward(Context& ctx, const ForwardOptions& opts) {
  if (opts.list) {
    return list_forwards(ctx,
                         opts.name.empty() ? std::nullopt : std::optional<std::string>(opts.name));
  }
  if (opts.name.empty()) {
    throw UsageError("forward", "a machine name is required",
                     "gpumachine forward NAME 8888, or --list for every machine");
  }
  if (opts.stop) {
    return stop_forwards(ctx, opts);
  }
  if (opts.specs.empty()) {
    throw UsageError("forward " + opts.name, "no port to forward",
                     "give PORT or [LOCAL_ADDR:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT, e.g. "
                     "`gpumachine forward " +
                         opts.name + " 8888`");
  }
  std::vector<ssh::ForwardSpec> specs;
  for (const std::string& text : opts.specs) {
    specs.push_back(ssh::parse_forward_spec(text));
  }
  MachineRecord record = machine::load_for_ssh(ctx.store(), opts.name, "forward");
  // Listen first: a taken port is a usage error before any connection is made.
  ssh::Forwarder forwarder(std::move(specs), tunnel_options(ctx, opts.name));
  // With the OpenSSH client as the data plane it logs in itself; libssh2 needs a session.
  std::unique_ptr<ssh::Session> session;
  if (!forwarder.uses_openssh()) {
    session = machine::connect(record);
  }
  return run_tunnel(ctx, opts.name, forwarder, std::move(session), TunnelInfo{}, opts.background);
}

}  // namespace

void setup_forward(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "forward", "forward local ports to a machine over SSH (kept up across drops)");
  auto opts = std::make_shared<ForwardOptions>();
  sub->add_option("name", opts->name, "machine name");
  sub->add_option("spec", opts->specs,
                  "PORT or [LOCAL_ADDR:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT (local 127.0.0.1)");
  sub->add_flag("--background", opts->background, "detach; log and pid in the machine's directory");
  sub->add_flag("--list", opts->list, "list background forwards (of NAME, or of every machine)");
  sub->add_flag("--stop", opts->stop, "stop NAME's background forwards (those of SPECs only)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_forward(ctx, *opts); };
  });
}

}  // namespace gm::cli
