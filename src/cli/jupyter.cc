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
  sub->add_option("--port", opts->port, "port on the machine (its 127.0.0.1)")
      ->capture_default_str();
  sub->add_option("--local-port", opts->local_port, "local port (default: --port when free)");
  sub->add_option("--dir", opts->dir, "working directory on the machine (default: home)");
  CLI::Option* image = sub->add_option("--image", opts->image,
                                       "container image (default $GPUMACHINE_JUPYTER_IMAGE or "
                                       "quay.io/jupyter/pytorch-notebook:cuda12-latest)");
  CLI::Option* host = sub->add_flag("--host", opts->host, "use the jupyter installed on the host");
  image->excludes(host);
  sub->add_flag("--open", opts->open, "open the URL in the browser");
  sub->add_flag("--stop", opts->stop, "stop the server and its background forward");
  sub->add_flag("--background", opts->background, "detach the forward");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_remote_app(ctx, *opts); };
  });
}

}  // namespace gm::cli
