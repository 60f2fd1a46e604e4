// The shared implementation of start, stop, kill and restart.
#pragma once

#include "cli/verbs.h"
#include "gm/driver.h"

namespace gm::cli {

/// One lifecycle verb: its name, help, past tense for the report, whether it takes --wait, and
/// the driver operation it runs.
struct PowerVerb {
  const char* name;
  const char* help;
  const char* done;
  bool has_wait;
  void (Driver::*action)(MachineRecord& record, DriverHost& host);
};

/// Registers the verb; when chosen it locks the machine, runs the action, saves and reports
/// (JSON: the machine summary).
void setup_power_verb(CLI::App& app, Dispatch& dispatch, const PowerVerb& verb);

}  // namespace gm::cli
