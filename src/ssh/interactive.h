// `gpumachine ssh NAME` with no command: exec the OpenSSH client with the machine's key, user,
// port and pinned known_hosts (full fidelity); without OpenSSH, a native PTY over libssh2.
#pragma once

#include "gm/machine.h"

#include <filesystem>
#include <string>
#include <vector>

namespace gm::ssh {

/// Runs an interactive login (or `ssh -t ... command` when command is non-empty) and returns
/// its exit status. Uses `ssh` from PATH when present (replacing the process image is not done,
/// so callers keep the lock semantics simple: it is run as a child and waited for).
int interactive_session(const SshTarget& target, const std::filesystem::path& known_hosts_file,
                        const std::vector<std::string>& extra_ssh_args = {});

}  // namespace gm::ssh
