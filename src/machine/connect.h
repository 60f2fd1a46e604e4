// Opening SSH sessions to stored machines: always against the pinned host key, and to the
// address the provider has now.
#pragma once

#include "gm/driver.h"
#include "gm/error.h"
#include "gm/machine.h"
#include "ssh/openssh_master.h"
#include "ssh/session.h"
#include "store/store.h"

#include <chrono>
#include <memory>
#include <string_view>

namespace gm::machine {

/// An authenticated session to the machine, its host key verified against the record's pin.
/// retry_for keeps retrying refused connections (a host that is booting). A record without an
/// address is an error naming the fix: `create` for an unfinished create, else `start`.
std::unique_ptr<ssh::Session> connect(const MachineRecord& record,
                                      std::chrono::milliseconds retry_for = {});

/// What the OpenSSH client logs in with: the record's target, the machine's known_hosts file
/// (only its pinned key) and its subject for errors. The same address checks as connect().
ssh::OpenSshLogin openssh_login(const store::Store& store, const MachineRecord& record);

/// Waits until the machine's SSH port accepts TCP connections or \a deadline passes (then it
/// returns too: the connection that follows reports why). A refused probe costs one round trip,
/// so probes start 10 ms apart and back off to 100 ms. Checks for Ctrl-C through \a host.
void wait_for_port(const MachineRecord& record, DriverHost& host,
                   std::chrono::steady_clock::time_point deadline);

/// The host's boot id (/proc/sys/kernel/random/boot_id, under $GM_SYSROOT on a simulated host);
/// empty when it cannot be read.
std::string boot_id(ssh::RemoteShell& shell);

/// The boot id before a reboot is asked for, for wait_for_new_boot: empty when the machine has no
/// address or does not answer (then any answer after the reboot counts as the new boot). A wrong
/// host key or a refused login is thrown.
std::string boot_before_reboot(const MachineRecord& record);

/// True for an SSH failure a host that is down or going down causes (anything but a wrong host
/// key, a refused login or a missing key file).
bool is_unreachable(const SshError& e);

/// After a reboot was asked for: tries the machine (pinned key) until it answers from a new
/// boot, shown by a boot id other than \a old_boot or by SSH having failed in between (for a host
/// whose boot id cannot be read); returns that session. A wrong host key or a refused login ends
/// the wait at once; after \a limit it throws. Each try checks for Ctrl-C through \a host.
std::unique_ptr<ssh::Session> wait_for_new_boot(const MachineRecord& record, DriverHost& host,
                                                const std::string& old_boot,
                                                std::chrono::milliseconds limit);
/// Asks the machine's driver for its state. When the answer differs from the record (the state,
/// or the address after a stop and start behind gpumachine's back, e.g. by the autostop agent),
/// records it under the machine's lock: re-read, changed and saved only when no other command
/// holds the lock (that command's record wins) and the machine still exists (a machine `rm`
/// removed meanwhile is never brought back). `verb` names this command to a waiting one. A caller
/// that holds the lock passes it as `held`, and the change is saved through it.
MachineState refresh_state(store::Store& store, MachineRecord& record, std::string_view verb,
                           const store::MachineLock* held = nullptr);

/// The record of a machine to connect to. A machine that can be stopped (capabilities().power)
/// is asked for its state and address first (refresh_state); a stopped one is an error naming
/// `gpumachine start NAME`, a terminated one `gpumachine rm NAME`. `held`: as for refresh_state.
MachineRecord load_for_ssh(store::Store& store, std::string_view name, std::string_view verb,
                           const store::MachineLock* held = nullptr);

}  // namespace gm::machine
