// `gpumachine jupyter NAME [--port 8888] [--local-port P] [--dir DIR] [--image IMAGE | --host]
// [--open] [--stop] [--background]`: JupyterLab on the machine's 127.0.0.1, reached through a
// forward, with the token read from the server itself.
#include "cli/remote_app.h"
#include "cli/verbs.h"

namespace gm::cli {

void setup_jupyter(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "jupyter", "start (or reuse) Jupyter on a machine and forward it to this computer");
  auto opts = std::make_shared<RemoteAppOptions>();
  opts->kind = "jupyter";
  opts->port = 8888;
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("--dir", opts->dir, "working directory on the machine (default: home)");
  add_remote_app_options(*sub, dispatch, opts);
}

}  // namespace gm::cli
