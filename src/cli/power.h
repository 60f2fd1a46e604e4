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

}  // namespace gm::cli
