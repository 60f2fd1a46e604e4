// `gpumachine sync NAME [--dir DIR] [--down PATH]...`: the project to its folder on the machine
// (what `run` does first), or with --down, paths from there back into the project.
#include "cli/run.h"
#include "cli/verbs.h"
#include "gm/error.h"

namespace gm::cli {

namespace {

struct SyncOptions {
  std::string name;
  std::string dir = ".";
  std::vector<std::string> down;
};

int run_sync(Context& ctx, const SyncOptions& o) {
  for (const std::string& path : o.down) {
    run::check_relative(path, "--down");
  }
  run::Project project = run::open_project(o.dir);
  ProjectOnMachine on = open_project_on(ctx, o.name, project, "sync", false);
  if (o.down.empty()) {
    upload_project(project, on.target);
    return exit_code::k_ok;
  }
  download_results(project, on.target, o.down);
  return exit_code::k_ok;
}

}  // namespace

void setup_sync(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "sync", "send the project folder to the machine (only what changed), or copy paths back");
  auto opts = std::make_shared<SyncOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("--dir", opts->dir, "project folder (default: the current one)");
  sub->add_option("--down", opts->down,
                  "copy this path (relative to the project) from the machine; repeatable")
      ->allow_extra_args(false);
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_sync(ctx, *opts); }; });
}

}  // namespace gm::cli
