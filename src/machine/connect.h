// Opening SSH sessions to stored machines: always against the pinned host key.
#pragma once

#include "gm/driver.h"
#include "gm/error.h"
#include "gm/machine.h"
#include "ssh/session.h"

#include <chrono>
#include <memory>

namespace gm::machine {

/// An authenticated session to the machine, its host key verified against the record's pin.
/// retry_for keeps retrying refused connections (a host that is booting).
std::unique_ptr<ssh::Session> connect(const MachineRecord& record,
                                      std::chrono::milliseconds retry_for = {});

/// The host's boot id (/proc/sys/kernel/random/boot_id, under $GM_SYSROOT on a simulated host);
/// empty when it cannot be read.
std::string boot_id(ssh::RemoteShell& shell);

/// True for an SSH failure a host that is down or going down causes (anything but a wrong host
/// key, a refused login or a missing key file).
bool is_unreachable(const SshError& e);

/// After a reboot was asked for: tries the machine (pinned key) until it answers from a new
/// boot, shown by a boot id other than \a old_boot or by SSH having failed in between (for a host
/// whose boot id cannot be read); returns that session. A wrong host key or a refused login ends the wait
/// at once; after \a limit it throws. Each try checks for Ctrl-C through \a host.
std::unique_ptr<ssh::Session> wait_for_new_boot(const MachineRecord& record, DriverHost& host,
                                                const std::string& old_boot,
                                                std::chrono::milliseconds limit);

}  // namespace gm::machine
