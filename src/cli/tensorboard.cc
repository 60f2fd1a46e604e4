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
  add_remote_app_options(*sub, dispatch, opts);
}

}  // namespace gm::cli
