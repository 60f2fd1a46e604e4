// `gpumachine probe NAME`: prove the GPU works by running CUDA kernels on it (and, with
// --container, inside `docker run --gpus all`). Exit 0 healthy, 1 a GPU failed a check, 6 no
// NVIDIA driver or GPU on the host.
#include "cli/verbs.h"

#include "cli/probe_cluster.h"

#include "machine/connect.h"
#include "machine/setup.h"

namespace gm::cli {

namespace {

struct ProbeVerbOptions {
  std::string name;
  bool container = false;
  std::string image;
  int expected_gpus = -1;
  bool cluster = false;
  ClusterProbeOptions cluster_options;
};

int run_probe_verb(Context& ctx, const ProbeVerbOptions& opts) {
  // The probe's findings go into the record: held from the read to the last save.
  store::MachineLock lock = ctx.store().lock(opts.name, "probe");
  MachineRecord record = machine::load_for_ssh(ctx.store(), opts.name, "probe", &lock);
  probe::ProbeOptions options;
  options.container = opts.container;
  if (!opts.image.empty()) {
    options.container_image = opts.image;
  }
  if (opts.expected_gpus >= 0) {
    options.expected_gpus = opts.expected_gpus;
  } else {
    options.expected_gpus = machine::expected_gpus(record);
  }
  machine::MachineHost host(ctx.store(), lock);
  probe::ProbeResult result = machine::probe_machine(record, host, options);
  if (ctx.json()) {
    nlohmann::json doc = probe::to_json(result);
    doc["name"] = record.name;
    ctx.out().print_json(doc);
  } else {
    ctx.out().print_line(probe::render_table(result));
  }
  return probe::verdict_exit_code(result);
}

}  // namespace

void setup_probe(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub =
      app.add_subcommand("probe", "run CUDA kernels and GPU health checks on a machine");
  auto opts = std::make_shared<ProbeVerbOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_flag("--container", opts->container,
                "also run the probe inside `docker run --rm --gpus all`");
  sub->add_option("--image", opts->image,
                  "image with python3 for --container (default python:3.12-slim)");
  sub->add_option("--expected-gpus", opts->expected_gpus,
                  "fail when fewer GPUs are found (default: from the instance type)");
  sub->add_flag("--cluster", opts->cluster,
                "an all-reduce across every node of a cluster: bus bandwidth, transport, verdict");
  sub->add_option("--python", opts->cluster_options.python,
                  "with --cluster: the nodes' Python with torch (default python3)");
  sub->add_flag("--expect-efa", opts->cluster_options.expect_efa,
                "with --cluster: fail unless EFA carried the all-reduce");
  sub->add_option("--master-port", opts->cluster_options.master_port,
                  "with --cluster: the rendezvous port on node 0 (default 29500)");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) {
      if (opts->cluster) {
        opts->cluster_options.name = opts->name;
        return probe_cluster(ctx, opts->cluster_options);
      }
      return run_probe_verb(ctx, *opts);
    };
  });
}

}  // namespace gm::cli
