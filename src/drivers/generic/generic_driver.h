// The generic driver: a Linux host the user already has, reached by SSH (Docker Machine's
// `generic`). It pins the host key, collects facts, reboots over SSH; it cannot power the host.
#pragma once

#include "gm/driver.h"
#include "ssh/remote_shell.h"

#include <memory>

namespace gm::drivers::generic {

/// The registry row for this driver (flags and factory).
DriverInfo driver_info();

/// Parses host_facts.sh output into the record's facts (os, kernel, arch, cpus, memory, gpus).
nlohmann::json parse_host_facts(std::string_view text);

/// Runs host_facts.sh on the host and returns the parsed facts.
nlohmann::json collect_host_facts(ssh::RemoteShell& shell);

}  // namespace gm::drivers::generic
