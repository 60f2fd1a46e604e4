// The gpumachine executable: everything lives in gm_core; this only hands over argv.
#include "cli/app.h"

int main(int argc, char** argv) {
  return gm::cli::run_main(argc, argv);
}
