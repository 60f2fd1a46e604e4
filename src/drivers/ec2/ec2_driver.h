// The ec2 driver: GPU (or CPU) instances in the user's own AWS account. One security group and
// one imported key pair per machine, all tagged Name / gpumachine:machine / gpumachine:id, each
// recorded in the ledger before or as it is created, so `rm` (and `gc`) can always finish.
#pragma once

#include "drivers/ec2/ec2_api.h"
#include "gm/driver.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace gm::drivers::ec2 {

/// Tag keys on every resource the driver creates.
inline constexpr const char* k_tag_machine = "gpumachine:machine";
inline constexpr const char* k_tag_id = "gpumachine:id";
/// The home that made it (Store::home_id()); absent on resources of versions before it.
inline constexpr const char* k_tag_home = "gpumachine:home";
/// When its machine's create began (RFC 3339 UTC): `gc`'s age, also for security groups.
inline constexpr const char* k_tag_created = "gpumachine:created";

/// The registry row for this driver (flags, factory, batched ls).
DriverInfo driver_info();
/// A new ec2 driver object.
std::unique_ptr<Driver> make_driver();

/// The portable state of an EC2 instance state name (libcloud's NODE_STATE_MAP).
MachineState map_state(std::string_view ec2_state);

/// Refreshes last_state, ssh.host and cost.launched_at of many ec2 machines: one
/// DescribeInstances per region (instance-id filter), regions in parallel, all within \a timeout.
void list_states(std::vector<MachineRecord*>& records, std::chrono::milliseconds timeout);

/// Scans scope.regions for resources tagged gpumachine:* that no readable local record owns
/// (terminated instances are left out), each with the reason it is kept, if any: it belongs
/// to an unreadable local record (by name), to another home or to none (unless all_homes), or
/// is younger than min_age (or of unknown age).
std::vector<Orphan> find_orphans(const OrphanScope& scope);
/// Deletes orphans (those not kept): terminates instances and waits, then volumes, security groups
/// (retrying DependencyViolation) and key pairs. Returns one line per action; failures are lines
/// too.
std::vector<std::string> delete_orphans(const std::vector<Orphan>& orphans);

}  // namespace gm::drivers::ec2
