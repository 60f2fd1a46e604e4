// The shared implementation of start, stop, kill and restart.
#pragma once

#include "cli/verbs.h"
#include "gm/driver.h"

namespace gm::cli {

/// One lifecycle verb: its name, help, past tense for the report, whether it takes --wait, the
/// driver operation it runs, and whether it powers the machine off (stop, kill).
struct PowerVerb {
  const char* name;
  const char* help;
  const char* done;
  bool has_wait;
  void (Driver::*action)(MachineRecord& record, DriverHost& host);
  bool powers_off = false;
};

/// Registers the verb; when chosen it locks the machine, runs the action, saves and reports
/// (JSON: the machine summary).
void setup_power_verb(CLI::App& app, Dispatch& dispatch, const PowerVerb& verb);

/// Warns on stderr where the driver's powered-off machines are still billed (its capability
/// stop_saves_compute is false); \a when prefixes the warning ("when idle, autostop ... : ").
void warn_if_off_still_bills(const Driver& driver, const MachineRecord& record,
                             const std::string& when);

}  // namespace gm::cli
