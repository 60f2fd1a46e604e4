// `gpumachine tensorboard NAME --logdir DIR [--port 6006] ...`: TensorBoard on the machine's
// 127.0.0.1, forwarded like `jupyter` (no token).
#include "cli/remote_app.h"
#include "cli/verbs.h"

namespace gm::cli {

void setup_tensorboard(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "tensorboard", "start (or reuse) TensorBoard on a machine and forward it to this computer");
  auto opts = std::make_shared<RemoteAppOptions>();
  opts->kind = "tensorboard";
  opts->port = 6006;
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("--logdir", opts->logdir, "log directory on the machine");
  sub->add_option("--port", opts->port, "port on the machine (its 127.0.0.1)")
      ->capture_default_str();
  sub->add_option("--local-port", opts->local_port, "local port (default: --port when free)");
  CLI::Option* image = sub->add_option("--image", opts->image,
                                       "container image (default $GPUMACHINE_TENSORBOARD_IMAGE or "
                                       "tensorflow/tensorflow:latest-gpu)");
  CLI::Option* host =
      sub->add_flag("--host", opts->host, "use the tensorboard installed on the host");
  image->excludes(host);
  sub->add_flag("--open", opts->open, "open the URL in the browser");
  sub->add_flag("--stop", opts->stop, "stop the server and its background forward");
  sub->add_flag("--background", opts->background, "detach the forward");
  sub->callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_remote_app(ctx, *opts); };
  });
}

}  // namespace gm::cli
