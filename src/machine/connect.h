// Opening SSH sessions to stored machines: always against the pinned host key.
#pragma once

#include "gm/machine.h"
#include "ssh/session.h"

#include <chrono>
#include <memory>

namespace gm::machine {

/// An authenticated session to the machine, its host key verified against the record's pin.
/// retry_for keeps retrying refused connections (a host that is booting).
std::unique_ptr<ssh::Session> connect(const MachineRecord& record,
                                      std::chrono::milliseconds retry_for = {});

}  // namespace gm::machine
