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
/// extra_ssh_args are OpenSSH options, placed before the destination; the native fallback
/// ignores them.
int interactive_session(const SshTarget& target, const std::filesystem::path& known_hosts_file,
                        const std::vector<std::string>& extra_ssh_args = {},
                        const std::string& command = {});

/// The OpenSSH client's argv for interactive_session (ssh_path first).
std::vector<std::string> openssh_argv(const std::string& ssh_path, const SshTarget& target,
                                      const std::filesystem::path& known_hosts_file,
                                      const std::vector<std::string>& extra_ssh_args,
                                      const std::string& command, bool allocate_tty);

/// Runs the OpenSSH client: argv[0] is "ssh" (looked up in PATH). Returns its exit status, or
/// throws Error when there is no OpenSSH client.
int run_openssh(std::vector<std::string> argv);

/// The fallback without OpenSSH: a PTY shell (or command) over libssh2, with the host key
/// pinned from target.host_key or else from known_hosts_file. Terminal I/O goes through the
/// given descriptors; raw mode and window-size tracking apply only when in_fd is a terminal.
int native_session(const SshTarget& target, const std::filesystem::path& known_hosts_file,
                   const std::string& command = {}, int in_fd = 0, int out_fd = 1, int err_fd = 2);

}  // namespace gm::ssh
