// `gpumachine ray NAME [--image IMAGE] [--port 6379] [--dashboard-port 8265] [--local-port P]
// [--background]` on a cluster (docs/clusters.md): the Ray head on node 0, a worker on every
// other node (both through cluster::fanout, whose rank environment names node 0's and each
// node's own private address), then the dashboard forwarded as `jupyter` forwards its server.
// `--stop`: `ray stop` (or the container removed) on every node, and the background forward.
#include "cli/run.h"
#include "cli/tunnel.h"
#include "cli/verbs.h"

#include "cluster/fanout.h"
#include "gm/error.h"
#include "machine/cluster_nodes.h"
#include "machine/connect.h"
#include "util/log.h"
#include "util/shell.h"

#include <utility>

namespace gm::cli {

namespace {

constexpr const char* k_container = "gpumachine-ray";
/// What a rank's command exits with when there is no Ray to start: the shell's "not found"
/// (docker run says the same for an image without `ray`).
constexpr int k_no_ray = 127;

struct RayOptions {
  std::string name;
  std::string image;
  int port = 6379;
  int dashboard_port = 8265;
  int local_port = 0;
  bool background = false;
  bool stop = false;
};

/// The node's own private address: its field of NODE_IPS (rank order).
constexpr const char* k_own_ip = "\"$(echo \"$NODE_IPS\" | cut -d, -f$((NODE_RANK + 1)))\"";

/// `ray start ARGS` on the node, or in the Ray container from the user's image (host network,
/// the GPUs where the nodes have them, --block to keep the container up).
std::string ray_start(const RayOptions& o, const std::string& args, bool gpus) {
  if (o.image.empty()) {
    return "command -v ray >/dev/null || { echo \"ray is not on this node's PATH\" >&2; exit " +
           std::to_string(k_no_ray) + "; }; ray start " + args + " </dev/null";
  }
  std::string name = k_container;
  return "docker rm -f " + name + " >/dev/null 2>&1; docker run -d --name " + name +
         " --network host --ipc=host" + (gpus ? " --gpus all " : " ") + util::shell_quote(o.image) +
         " ray start " + args + " --block </dev/null";
}

/// The head's start on rank 0 (the other ranks do nothing).
std::string head_command(const RayOptions& o, bool gpus) {
  return "[ \"$NODE_RANK\" != 0 ] || { " +
         ray_start(o,
                   "--head --port " + std::to_string(o.port) +
                       " --node-ip-address \"$MASTER_ADDR\" --dashboard-host 127.0.0.1 "
                       "--dashboard-port " +
                       std::to_string(o.dashboard_port) + " --disable-usage-stats",
                   gpus) +
         "; }";
}

/// A worker's start on every rank but 0, joining the head at MASTER_ADDR.
std::string worker_command(const RayOptions& o, bool gpus) {
  return "[ \"$NODE_RANK\" = 0 ] || { " +
         ray_start(o,
                   "--address \"$MASTER_ADDR:" + std::to_string(o.port) + "\" --node-ip-address " +
                       k_own_ip + " --disable-usage-stats",
                   gpus) +
         "; }";
}

/// Runs command on every node, output prefixed by rank on stderr; a node without Ray is an error
/// naming it, another failure one naming the node and its status.
void on_every_node(const MachineRecord& record, const RayOptions& o, const std::string& step,
                   const std::string& command) {
  cluster::FanoutOptions options;
  options.command = command;
  options.on_line = [](cluster::Stream, std::string_view line) { write_all(stderr, line); };
  cluster::FanoutResult result = cluster::fanout(machine::fanout_nodes(record), options);
  if (!result.failed_rank) {
    return;
  }
  std::string node = "machine '" + o.name + "' node " + std::to_string(*result.failed_rank);
  if (result.exit_status == k_no_ray) {
    throw Error(node, "cannot " + step, "Ray is not installed there",
                o.image.empty()
                    ? "pass --image with an image that has Ray (e.g. rayproject/ray), or install "
                      "Ray on the nodes (`gpumachine run " +
                          o.name + " --nodes all -- pip install 'ray[default]'`)"
                    : "pass an --image that has Ray (`ray` on its PATH), e.g. rayproject/ray");
  }
  throw Error(node, "cannot " + step, "exit status " + std::to_string(result.exit_status),
              "its output is above, prefixed [" + std::to_string(*result.failed_rank) + "]");
}

std::vector<TunnelRecord> ray_tunnels(Context& ctx, const std::string& name) {
  std::vector<TunnelRecord> out;
  for (TunnelRecord& t : list_tunnels(ctx.store(), name)) {
    if (t.kind == "ray") {
      out.push_back(std::move(t));
    }
  }
  return out;
}

int stop_ray(Context& ctx, const RayOptions& o, const MachineRecord& record) {
  std::string name = k_container;
  on_every_node(record, o, "stop Ray",
                "if command -v docker >/dev/null && docker container inspect " + name +
                    " >/dev/null 2>&1; then docker rm -f " + name +
                    " >/dev/null; fi; if command -v ray >/dev/null; then ray stop </dev/null; fi");
  int forwards = 0;
  for (const TunnelRecord& t : ray_tunnels(ctx, o.name)) {
    stop_tunnel(t);
    ++forwards;
  }
  if (ctx.json()) {
    ctx.out().print_json({{"name", o.name}, {"state", "stopped"}, {"forwards_stopped", forwards}});
  } else {
    ctx.out().print_line("stopped Ray on the " + std::to_string(record.cluster->nodes.size()) +
                         " nodes of '" + o.name + "'");
  }
  return 0;
}

int run_ray(Context& ctx, const RayOptions& o) {
  for (auto [flag, port] :
       {std::pair{"--port", o.port}, std::pair{"--dashboard-port", o.dashboard_port},
        std::pair{"--local-port", o.local_port == 0 ? 1 : o.local_port}}) {
    if (port < 1 || port > 65535) {
      throw UsageError(std::string(flag) + " " + std::to_string(port),
                       "not a port number (1-65535)");
    }
  }
  MachineRecord record = machine::load_for_ssh(ctx.store(), o.name, "ray");
  if (!record.cluster) {
    throw UsageError("ray " + o.name, "machine '" + o.name + "' is not a cluster",
                     "create one with `gpumachine create NAME --nodes N`; on one machine, run "
                     "`ray start --head` with `gpumachine ssh " +
                         o.name + "` and `gpumachine forward " + o.name + " 8265`");
  }
  if (o.stop) {
    return stop_ray(ctx, o, record);
  }
  // Listen before starting anything: a taken --local-port is a usage error up front.
  ssh::ForwardSpec spec;
  spec.remote_port = o.dashboard_port;
  spec.local_port =
      o.local_port != 0 ? o.local_port : ssh::suggest_free_port(spec.local_addr, o.dashboard_port);
  ssh::Forwarder forwarder(std::vector<ssh::ForwardSpec>{spec}, tunnel_options(ctx, o.name));
  int local_port = forwarder.specs().front().local_port;

  bool gpus = record.size.gpu_count > 0;
  std::string head = record.cluster->nodes.front().private_ip + ":" + std::to_string(o.port);
  util::info("starting the Ray head on node 0 (" + head + ")");
  on_every_node(record, o, "start the Ray head", head_command(o, gpus));
  util::info("starting Ray workers on the other " +
             std::to_string(record.cluster->nodes.size() - 1) + " nodes");
  on_every_node(record, o, "start a Ray worker", worker_command(o, gpus));

  TunnelInfo info;
  info.kind = "ray";
  info.urls = {"http://127.0.0.1:" + std::to_string(local_port) + "/"};
  info.stop_command = "gpumachine ray " + o.name + " --stop";
  info.extra = {{"ray_address", "http://127.0.0.1:" + std::to_string(local_port)},
                {"cluster_address", head},
                {"dashboard_port", o.dashboard_port},
                {"local_port", local_port}};
  if (!ctx.json()) {
    ctx.out().print_line("RAY_ADDRESS=http://127.0.0.1:" + std::to_string(local_port) +
                         "  (for `ray job submit` on this computer)");
    ctx.out().print_line("cluster address " + head + "  (ray.init(address=\"" + head +
                         "\") on the nodes)");
  }
  return run_tunnel(ctx, o.name, forwarder, machine::connect(record), info, o.background);
}

}  // namespace

void setup_ray(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "ray", "start Ray on a cluster (head on node 0) and forward its dashboard");
  auto opts = std::make_shared<RayOptions>();
  sub->add_option("name", opts->name, "cluster name")->required();
  sub->add_option("--image", opts->image, "run Ray in this image (with `ray` on its PATH)");
  sub->add_option("--port", opts->port, "the head's port (GCS)")->capture_default_str();
  sub->add_option("--dashboard-port", opts->dashboard_port, "the dashboard's port on node 0")
      ->capture_default_str();
  sub->add_option("--local-port", opts->local_port,
                  "local port of the dashboard (default: --dashboard-port when free)");
  sub->add_flag("--background", opts->background, "detach the dashboard forward");
  sub->add_flag("--stop", opts->stop, "stop Ray on every node and the dashboard forward");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_ray(ctx, *opts); }; });
}

}  // namespace gm::cli
