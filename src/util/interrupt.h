// Ctrl-C / SIGTERM handling: the first signal asks the running verb to stop at a safe point;
// a second one ends the process at once with status 130.
#pragma once

namespace gm::util {

/// Installs the SIGINT/SIGTERM handlers (idempotent).
void install_interrupt_handlers();
/// True once SIGINT or SIGTERM arrived.
bool interrupt_requested();

}  // namespace gm::util
