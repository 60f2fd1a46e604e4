// `gpumachine kill NAME`: force-stop a machine (like pulling the plug; the disk is kept).
#include "cli/power.h"

namespace gm::cli {

void setup_kill(CLI::App& app, Dispatch& dispatch) {
  setup_power_verb(app, dispatch,
                   {"kill", "force-stop a machine (like pulling the plug; the disk is kept)",
                    "killed", false, &Driver::kill, true});
}

}  // namespace gm::cli
