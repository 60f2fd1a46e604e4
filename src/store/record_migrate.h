// Older on-disk record schemas, read by this version: each step brings a record's JSON up one
// version, so a record written by any earlier gpumachine loads (docs/cli.md "machine.json").
#pragma once

#include <nlohmann/json.hpp>

namespace gm::store {

/// Brings \a record (a JSON object whose schema_version is at most MachineRecord's, absent: 1) up
/// to the current schema in place. Version 1 kept what the core owns inside driver_config and
/// facts under string keys; version 2 has them as typed fields (progress, size, provision, cost)
/// and leaves driver_config to the driver; version 3 adds the optional `cluster` section (absent:
/// one machine), so older versions refuse a cluster rather than take it for its node 0. Throws
/// nlohmann::json::exception on a value of the wrong type (the caller reports a corrupt record).
void migrate_record(nlohmann::json& record);

}  // namespace gm::store
