// `gpumachine provision NAME`: (re)run the idempotent NVIDIA driver / Docker / toolkit
// installation; `--dry-run` prints the plan for the host without changing anything.
#include "cli/verbs.h"

#include "gm/driver.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "machine/setup.h"
#include "provision/plan.h"

#include <cstdio>

namespace gm::cli {

namespace {

struct ProvisionVerbOptions {
  std::string name;
  ProvisionFlags flags;
  bool dry_run = false;
};

nlohmann::json steps_json(const provision::ProvisionResult& result) {
  nlohmann::json steps = nlohmann::json::array();
  for (const provision::StepReport& s : result.steps) {
    steps.push_back({{"step", provision::to_string(s.id)},
                     {"outcome", provision::to_string(s.outcome)},
                     {"seconds", static_cast<double>(s.elapsed.count()) / 1000.0},
                     {"detail", s.detail}});
  }
  return steps;
}

int run_provision(Context& ctx, const ProvisionVerbOptions& opts) {
  provision::Overrides overrides = opts.flags.overrides();
  if (opts.dry_run) {
    MachineRecord record = machine::load_for_ssh(ctx.store(), opts.name, "provision");
    std::unique_ptr<ssh::Session> session = machine::connect(record);
    provision::Plan plan = provision::plan_for(provision::gather_facts(*session),
                                               machine::remembered_overrides(record, overrides));
    if (ctx.json()) {
      nlohmann::json steps = nlohmann::json::array();
      for (const provision::PlannedStep& s : plan.steps) {
        steps.push_back(
            {{"step", provision::to_string(s.id)}, {"run", s.run}, {"reason", s.reason}});
      }
      ctx.out().print_json({{"name", opts.name},
                            {"host", plan.host_description},
                            {"driver_branch", plan.driver_branch},
                            {"driver_flavour", provision::to_string(plan.flavour)},
                            {"notes", plan.notes},
                            {"warnings", plan.warnings},
                            {"steps", steps}});
    } else {
      ctx.out().print_line(provision::render_plan(plan));
    }
    return 0;
  }
  store::MachineLock lock = ctx.store().lock(opts.name, "provision");
  MachineRecord record = machine::load_for_ssh(ctx.store(), opts.name, "provision", &lock);
  machine::MachineHost host(ctx.store(), lock);
  provision::ProvisionResult result = machine::provision_machine(record, host, overrides);
  if (ctx.json()) {
    ctx.out().print_json({{"name", record.name},
                          {"changed", result.changed()},
                          {"steps", steps_json(result)},
                          {"versions", result.versions},
                          {"notes", result.notes},
                          {"reboots", result.reboots},
                          {"round_trips", result.round_trips},
                          {"handshakes", result.handshakes}});
  } else {
    for (const provision::StepReport& s : result.steps) {
      char line[512];
      std::snprintf(line, sizeof line, "%-8s %-12s %6.1fs  %s",
                    std::string(provision::to_string(s.id)).c_str(),
                    std::string(provision::to_string(s.outcome)).c_str(),
                    static_cast<double>(s.elapsed.count()) / 1000.0, s.detail.c_str());
      ctx.out().print_line(line);
    }
    ctx.out().print_line(result.changed()
                             ? "machine '" + record.name + "' is provisioned"
                             : "machine '" + record.name + "' was already provisioned");
  }
  return 0;
}

}  // namespace

provision::Overrides ProvisionFlags::overrides() const {
  provision::Overrides o;
  if (driver_branch > 0) {
    o.driver_branch = driver_branch;
  }
  if (!driver_flavour.empty()) {
    o.driver_flavour = provision::parse_flavour(driver_flavour);
    if (!o.driver_flavour) {
      throw UsageError("--driver-flavour " + driver_flavour, "unknown flavour",
                       "use --driver-flavour open or --driver-flavour proprietary");
    }
  }
  o.verify_image = verify_image;
  o.no_gsp = no_gsp;
  o.mirrors = provision::checked_mirrors(mirrors);
  provision::validate_overrides(o);
  return o;
}

void ProvisionFlags::add_to(CLI::App& sub) {
  sub.add_option("--driver-branch", driver_branch,
                 "NVIDIA driver branch (default: chosen from the GPU generation)");
  sub.add_option("--driver-flavour", driver_flavour, "kernel modules: open or proprietary");
  sub.add_option("--verify-image", verify_image,
                 "image for the `docker run --gpus all` check (default ubuntu:24.04)");
  sub.add_flag("--no-gsp", no_gsp,
               "proprietary modules with GSP firmware off (workaround for GSP hangs on g4dn, g5, "
               "g5g; never a default)");
  auto mirror = [&](const char* flag, std::string& field, std::string_view upstream) {
    sub.add_option(flag, field,
                   "repository mirror: a base URL that stands for " + std::string(upstream) +
                       " (Artifactory, Nexus)");
  };
  mirror("--docker-mirror", mirrors.docker, provision::k_docker_upstream);
  mirror("--cuda-mirror", mirrors.cuda, provision::k_cuda_upstream);
  mirror("--toolkit-mirror", mirrors.toolkit, provision::k_toolkit_upstream);
}

void setup_provision(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "provision", "install the NVIDIA driver, Docker and the container toolkit (idempotent)");
  auto opts = std::make_shared<ProvisionVerbOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  opts->flags.add_to(*sub);
  sub->add_flag("--dry-run", opts->dry_run, "print the plan for the host and change nothing");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_provision(ctx, *opts); };
  });
}

}  // namespace gm::cli
