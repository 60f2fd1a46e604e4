// The image pull before a container starts on a machine (`jupyter`, `tensorboard`,
// `probe --container`): multi-GB images are pulled with bytes, rate and time left shown
// (util::Progress), instead of silently inside `docker run`.
#pragma once

#include "ssh/remote_shell.h"

#include <string>

namespace gm::machine {

/// Pulls \a image on the machine behind \a shell when it is missing, showing the progress of the
/// Engine API's per-layer stream as "pulling IMAGE on MACHINE" (`docker pull`'s own lines where
/// the API cannot be reached). A present image says nothing. A failed pull is not an error here:
/// the `docker run` that follows pulls again and says why it cannot.
void pull_image(ssh::RemoteShell& shell, const std::string& machine_name, const std::string& image);

}  // namespace gm::machine
