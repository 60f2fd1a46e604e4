// A generic host that lets us in only with an RSA key: libssh2 1.10 (Debian 12) signs RSA only
// with SHA-1 ssh-rsa, which OpenSSH 8.8+ refuses (../shared/spec/libssh2-notes.md). With the
// user's consent, one login with the user's own OpenSSH client and that RSA key appends the
// machine's own ed25519 public key to the host's authorized_keys; every later connection is
// native, with ed25519.
#pragma once

#include "gm/driver.h"
#include "gm/machine.h"

#include <string>

namespace gm::drivers::generic {

/// The remote command that appends public_key (one line) to ~/.ssh/authorized_keys once.
std::string append_key_command(const std::string& public_key);

/// Makes record.ssh.key_path (an ed25519 pair) when missing and installs its public half on the
/// host through `ssh -i rsa_key`, which must see exactly host_key (already verified). Asks
/// host.confirm() first, showing the exact command; a refusal or a failed login throws Error
/// with the fix.
void install_own_key(const MachineRecord& record, DriverHost& host, const std::string& rsa_key,
                     const std::string& host_key);

}  // namespace gm::drivers::generic
