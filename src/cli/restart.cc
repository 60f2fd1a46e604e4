// `gpumachine restart NAME [--wait running|ssh]`: reboot and wait until SSH answers again.
#include "cli/power.h"

namespace gm::cli {

void setup_restart(CLI::App& app, Dispatch& dispatch) {
  setup_power_verb(app, dispatch,
                   {"restart", "reboot a machine and wait until SSH answers", "restarted", true,
                    &Driver::restart});
}

}  // namespace gm::cli
