// The driver contract: one Driver object manages one machine on one provider. Drivers declare
// their create flags as data (so the CLI, machine files and docs share one list), validate them
// offline in configure(), and do provider work in the lifecycle calls. Waiting, SSH and
// provisioning around those calls belong to the machine layer (libmachine's split).
#pragma once

#include "gm/machine.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gm {

/// One create-time option of a driver, registered by the CLI as --<name>.
struct FlagSpec {
  std::string name;  ///< Without dashes, e.g. "generic-ip-address".
  std::string help;
  std::string default_value;         ///< Shown in help; empty for none.
  bool is_switch = false;            ///< Takes no value (e.g. --ec2-spot).
  bool repeatable = false;           ///< May be given several times (e.g. --ec2-tag).
  std::vector<std::string> aliases;  ///< Other accepted spellings (e.g. "amazonec2-region").
};

/// Option values by flag name (without dashes). A switch that is set has the value "true".
using Options = std::map<std::string, std::vector<std::string>>;

/// What a driver can do; the CLI checks it first and refuses with a clear message.
struct Capabilities {
  bool power = false;   ///< start / stop / kill.
  bool reboot = false;  ///< restart.
  /// The host's own power-off can be made a stop or a terminate (set_shutdown_behavior()).
  bool shutdown_behavior = false;
};

/// Services the machine layer gives a driver while it works.
class DriverHost {
 public:
  virtual ~DriverHost() = default;
  /// Persists the record now (call after each ledger change, before the next side effect).
  virtual void save(const MachineRecord& record) = 0;
  /// Reports the current phase ("launching instance in us-east-1a") to the user.
  virtual void phase(std::string_view text) = 0;
  /// A line for -v output (API calls, remote commands); already redacted by the caller.
  virtual void debug(std::string_view text) = 0;
  /// Throws InterruptedError if the user asked to stop (Ctrl-C, SIGTERM); call at safe points.
  virtual void check_interrupted() = 0;
  /// Where create, start and restart stop waiting: "running" (the provider reports it) or "ssh"
  /// (SSH answers with the pinned host key; the default).
  virtual std::string wait_target() const { return "ssh"; }
  /// The identity of the home whose record this is (a random id), for tagging what the driver
  /// creates so `gc` can tell homes apart. Empty where there is none.
  virtual std::string home_id() const { return {}; }
  /// Asks before a change outside gpumachine's own state (a key added to a host's
  /// authorized_keys): true with --yes or when the user says yes on a terminal, false without a
  /// terminal (the driver's error then names --yes).
  virtual bool confirm(std::string_view question) {
    (void)question;
    return false;
  }
};

/// One machine on one provider.
class Driver {
 public:
  virtual ~Driver() = default;

  virtual std::string_view name() const = 0;
  virtual Capabilities capabilities() const = 0;

  /// Validates options offline and writes them into record.driver_config and record.ssh.
  /// Throws UsageError naming the flag and the accepted values.
  virtual void configure(const Options& options, MachineRecord& record) = 0;

  /// Creates (or registers) the machine. Records each resource in record.resources and calls
  /// host.save() as soon as it exists. Returns when the machine is reachable over SSH.
  virtual void create(MachineRecord& record, DriverHost& host) = 0;

  /// Current state, asked of the provider.
  virtual MachineState state(MachineRecord& record, DriverHost& host) = 0;

  virtual void start(MachineRecord& record, DriverHost& host);
  virtual void stop(MachineRecord& record, DriverHost& host);
  virtual void kill(MachineRecord& record, DriverHost& host);
  virtual void restart(MachineRecord& record, DriverHost& host);
  /// What the host's own power-off becomes at the provider: "stop" or "terminate" (EC2's
  /// InstanceInitiatedShutdownBehavior). Keeps it in the record. Throws UsageError where the
  /// machine cannot do \a behavior (a one-time spot instance cannot stop).
  virtual void set_shutdown_behavior(MachineRecord& record, DriverHost& host,
                                     std::string_view behavior);
  /// Replaces the source range allowed to reach the machine's SSH (and its other opened ports)
  /// with \a cidr (empty: this computer's public address /32), where the driver keeps a firewall
  /// for the machine (ec2: its own security group). Returns the range it replaced.
  virtual std::string allow_ssh_from(MachineRecord& record, DriverHost& host,
                                     const std::string& cidr);
  /// Why SSH may not get through, for a connection that failed (ec2: this computer's address is
  /// not the one the security group admits); empty when the driver knows of nothing.
  virtual std::string explain_unreachable(const MachineRecord& record);

  /// Deletes every provider resource in the ledger; "not found" counts as done. Idempotent.
  /// Returns a human-readable line per thing done, for the user.
  virtual std::vector<std::string> remove(MachineRecord& record, DriverHost& host) = 0;
};

/// A driver in the registry.
struct DriverInfo {
  std::string name;
  std::vector<std::string> aliases;
  std::string description;
  std::vector<FlagSpec> flags;
  std::function<std::unique_ptr<Driver>()> make;
  /// Refreshes last_state of many machines of this driver at once, within timeout (one batched
  /// call per region for cloud drivers; parallel reachability checks for generic). Optional.
  std::function<void(std::vector<MachineRecord*>& records, std::chrono::milliseconds timeout)>
      list_states;
};

/// Every registered driver, in a fixed order.
const std::vector<DriverInfo>& driver_registry();

/// The driver of that name or alias. Throws UsageError with "did you mean ..." otherwise.
const DriverInfo& find_driver(std::string_view name);

}  // namespace gm
