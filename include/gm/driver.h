// The driver contract: one Driver object manages one machine on one provider. Drivers declare
// their create flags as data (so the CLI, machine files and docs share one list), validate them
// offline in configure(), and do provider work in the lifecycle calls. Waiting, SSH and
// provisioning around those calls belong to the machine layer (libmachine's split).
#pragma once

#include "gm/machine.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
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

/// How a driver guards the machine's network.
enum class FirewallModel {
  none,                     ///< Nothing of the driver's (generic: the host's own).
  per_machine_source_cidr,  ///< A firewall of the machine's own admitting one source range to
                            ///< 22/tcp (and the opened ports): allow_ssh_from() replaces it.
};

/// What a driver can do. The core asks these, never a driver's name; an operation whose
/// capability is false is refused with a clear message before the driver is called.
struct Capabilities {
  bool power = false;   ///< start / stop / kill.
  bool reboot = false;  ///< restart.
  /// A stopped machine is not billed for compute (EC2: yes; DigitalOcean: a powered-off droplet
  /// is billed in full, so `stop` says so and autostop offers destroy).
  bool stop_saves_compute = false;
  bool spot = false;              ///< Interruptible capacity can be asked for.
  bool placement_groups = false;  ///< Machines can be placed close together.
  FirewallModel firewall = FirewallModel::none;
  /// The host's own power-off can be made a stop or a terminate (set_power_off_action()).
  bool power_off_action = false;
};

/// The price of a machine's size, as shown before create and in `ls`.
struct PriceQuote {
  std::string size;    ///< Instance type, size slug.
  std::string region;  ///< Empty where the provider prices sizes globally.
  bool spot = false;
  std::optional<double> usd_per_hour;  ///< nullopt: the size is not in the driver's prices.
  /// "on-demand"; "spot" (the price charged now); "spot-max" (an upper bound: EC2 caps spot at
  /// the on-demand price).
  std::string basis;
  std::string origin;  ///< Where the number comes from: "embedded", "cache", "record", ...
  std::string as_of;   ///< When it was valid (date or RFC 3339 time); empty: now.
};

/// What the machine layer hands a driver for the machine's first boot. The driver wraps it in
/// its provider's user-data form (EC2: cloud-config in multi-part MIME, gzipped when large).
struct BootScript {
  /// OpenSSH private host key the machine must serve from its first boot; its public half is
  /// already pinned in record.ssh.host_key. Empty: the driver cannot hand in a host key.
  std::string host_private_key;
  std::string host_public_key;  ///< "ssh-ed25519 AAAA..." (the pin).
  /// A shell script run as root once at first boot (the provisioning prelude); empty: none.
  std::string script;
};

/// What the core knows of the image a driver boots, for the boot script.
struct BootImage {
  std::string os_id;       ///< "ubuntu"; empty: unknown (no prelude).
  std::string os_version;  ///< "24.04".
  bool nvswitch = false;   ///< The size's GPUs sit on NVSwitches (needs Fabric Manager).
};

/// What `gc` may consider (one driver's scan).
struct OrphanScope {
  /// Regions to scan (regional drivers); given with --region, else the regions of this
  /// driver's machines and its default region.
  std::vector<std::string> regions;
  std::set<std::string> known_ids;         ///< gpumachine:id of every readable local record
  std::set<std::string> unreadable_names;  ///< local records that cannot be read, by name
  std::string home_id;                     ///< this home's id
  bool all_homes = false;                  ///< other homes' and untagged resources too
  std::chrono::seconds min_age{600};       ///< younger resources are never touched
};

/// One row of `gc`: a resource tagged by gpumachine that no local record owns.
struct Orphan {
  std::string kind;  ///< "instance", "security-group", "key-pair", "volume", "droplet", ...
  std::string id;
  std::string region;   ///< Empty where the provider has none for it.
  std::string state;    ///< Provider state, where it has one.
  std::string detail;   ///< A name or size, for the user.
  std::string machine;  ///< its gpumachine:machine tag
  std::string home;     ///< its gpumachine:home tag; empty: made before homes were tagged
  std::string created;  ///< its gpumachine:created tag (RFC 3339), or the provider's time
  std::string kept;     ///< why gc leaves it alone; empty: delete_orphans() removes it
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
  /// The first-boot script and host key for the machine (made once and kept with the machine,
  /// so a resumed create hands in the same bytes); pins the key in record.ssh.host_key. A driver
  /// that later replaces the pin (ec2: with a key made on the host) stops asking.
  virtual BootScript boot_script(MachineRecord& record, const BootImage& image) {
    (void)record;
    (void)image;
    return {};
  }
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
  /// What this driver can do; the same for every machine of the driver.
  virtual Capabilities capabilities() const = 0;

  /// Validates options offline and writes them into record.driver_config (the driver's own typed
  /// config, serialized), record.size, record.cost.power_off_action and record.ssh.
  /// Throws UsageError naming the flag and the accepted values.
  virtual void configure(const Options& options, MachineRecord& record) = 0;

  /// Creates (or registers) the machine. Records each resource in record.resources and calls
  /// host.save() as soon as it exists; keeps record.progress.incomplete set until it is up (a
  /// later create resumes). Takes the first-boot script from host.boot_script(). Returns when
  /// the machine is reachable over SSH (or running, per host.wait_target()).
  virtual void create(MachineRecord& record, DriverHost& host) = 0;

  /// Current state, asked of the provider.
  virtual MachineState state(MachineRecord& record, DriverHost& host) = 0;

  virtual void start(MachineRecord& record, DriverHost& host);
  virtual void stop(MachineRecord& record, DriverHost& host);
  virtual void kill(MachineRecord& record, DriverHost& host);
  virtual void restart(MachineRecord& record, DriverHost& host);
  /// What the host's own power-off becomes at the provider: "stop" or "terminate" (EC2's
  /// InstanceInitiatedShutdownBehavior); capability power_off_action. Keeps it in
  /// record.cost.power_off_action. Throws UsageError where the machine cannot do \a action (a
  /// one-time spot instance cannot stop).
  virtual void set_power_off_action(MachineRecord& record, DriverHost& host,
                                    std::string_view action);
  /// The price per hour of the record's size (record.size), spot or not, offline where the
  /// driver can (ec2: the embedded or refreshed price table under \a home); nullopt where the
  /// driver has no price for it.
  virtual std::optional<PriceQuote> quote(const MachineRecord& record,
                                          const std::filesystem::path& home);
  /// Replaces the source range allowed to reach the machine's SSH (and its other opened ports)
  /// with \a cidr (empty: this computer's public address /32), where the driver keeps a firewall
  /// for the machine (capability firewall: per_machine_source_cidr; ec2: its own security group).
  /// Returns the range it replaced (.first) and the one allowed now (.second).
  virtual std::pair<std::string, std::string> allow_ssh_from(MachineRecord& record,
                                                             DriverHost& host,
                                                             const std::string& cidr);
  /// Why SSH may not get through, for a connection that failed (ec2: this computer's address is
  /// not the one the security group admits); empty when the driver knows of nothing.
  virtual std::string explain_unreachable(const MachineRecord& record);

  /// Deletes every provider resource in the ledger; "not found" counts as done. Idempotent.
  /// Returns a human-readable line per thing done, for the user.
  virtual std::vector<std::string> remove(MachineRecord& record, DriverHost& host) = 0;
};

/// A driver in the registry: what is known without a machine.
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
  /// `gc`: the region scanned when neither --region nor a machine names one (ec2: the
  /// configured AWS region). Optional; absent for drivers without regions.
  std::function<std::optional<std::string>()> default_region;
  /// `gc`: resources tagged gpumachine:* that no readable local record owns, each with the
  /// reason it is kept, if any. Optional (absent: the driver leaves nothing behind to scan for).
  std::function<std::vector<Orphan>(const OrphanScope& scope)> find_orphans;
  /// `gc --delete`: deletes the orphans not kept, in dependency order, each verified. One line
  /// per action; failures are lines starting with "FAILED".
  std::function<std::vector<std::string>(const std::vector<Orphan>& orphans)> delete_orphans;
  /// The default driver of `create` (exactly one in the registry).
  bool is_default = false;
};

/// Every registered driver, in a fixed order.
const std::vector<DriverInfo>& driver_registry();

/// The driver of that name or alias. Throws UsageError with "did you mean ..." otherwise.
const DriverInfo& find_driver(std::string_view name);

/// The driver `create` uses without --driver.
const DriverInfo& default_driver();

}  // namespace gm
