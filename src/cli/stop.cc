// `gpumachine stop NAME`: stop a machine (the disk is kept; compute billing stops).
#include "cli/power.h"

namespace gm::cli {

void setup_stop(CLI::App& app, Dispatch& dispatch) {
  setup_power_verb(app, dispatch,
                   {"stop", "stop a machine (the disk is kept; compute billing stops)", "stopped",
                    false, &Driver::stop, true});
}

}  // namespace gm::cli
