// `gpumachine start NAME [--wait running|ssh]`: start a stopped machine; its new address is
// recorded and ssh_config refreshed.
#include "cli/power.h"

namespace gm::cli {

void setup_start(CLI::App& app, Dispatch& dispatch) {
  setup_power_verb(
      app, dispatch,
      {"start", "start a stopped machine and wait until SSH answers (or --wait running)", "started",
       true, &Driver::start});
}

}  // namespace gm::cli
