// Machine value types: what a machine is (the record on disk), where to reach it over SSH,
// and the one state enum every driver maps its provider's states onto.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm {

/// Portable machine state; each driver maps its provider's states onto it (libcloud
/// NODE_STATE_MAP).
enum class MachineState {
  unknown,
  pending,
  running,
  stopping,
  stopped,
  terminated,
  unreachable,
  error
};

/// Lowercase name used in tables and JSON ("running", "stopped", ...).
std::string_view to_string(MachineState state);
/// Inverse of to_string(); nullopt for anything else.
std::optional<MachineState> parse_state(std::string_view text);

/// Everything needed to open an SSH session to a machine.
struct SshTarget {
  std::string host;
  int port = 22;
  std::string user;
  /// Absolute path of the private key (the machine's own, or the user's for generic).
  std::string key_path;
  /// Pinned host public key in OpenSSH form ("ssh-ed25519 AAAA..."); empty until pinned.
  std::string host_key;

  bool operator==(const SshTarget& other) const = default;
};

/// One provider resource the machine owns, recorded as soon as it exists (the ledger).
struct Resource {
  std::string kind;    ///< "instance", "security-group", "key-pair", "volume", ...
  std::string id;      ///< Provider id (i-..., sg-..., key name).
  std::string region;  ///< Provider region, empty where it has none.
  std::string status;  ///< "creating", "created" or "deleted".
};

/// How far `create` got: a driver that can resume an interrupted create marks it incomplete
/// until the machine is up; a create that undid its own resources marks it rolled back.
struct CreateProgress {
  bool incomplete = false;
  bool rolled_back = false;

  bool operator==(const CreateProgress&) const = default;
};

/// What the machine is, in the provider's terms the core understands (prices, `ls`, the GPU
/// count `create --wait gpu` expects). The driver fills it in configure() and create().
struct MachineSize {
  std::string region;         ///< Provider region; empty where there is none (generic).
  std::string instance_type;  ///< EC2 instance type, DigitalOcean size slug; empty: none.
  bool spot = false;          ///< Interruptible capacity (EC2 spot).
  int vcpus = 0;              ///< 0: unknown.
  long memory_mib = 0;        ///< 0: unknown.
  int gpu_count = 0;          ///< From the provider's catalogue; 0: none or unknown.
  std::string gpu_model;      ///< "T4", "H100"; empty: none or unknown.
  long gpu_memory_mib = 0;    ///< Per GPU; 0: unknown.

  bool operator==(const MachineSize&) const = default;
};

/// The provisioning choices the machine keeps (create's and the last provision's).
struct ProvisionChoices {
  /// provision::driver_overrides_to_json() form; empty object: the defaults.
  nlohmann::json overrides = nlohmann::json::object();
  /// Provisioning follows create, so a cloud driver may start installing at first boot.
  bool at_boot = false;

  bool operator==(const ProvisionChoices&) const = default;
};

/// The autostop setting (docs/cost.md): idle and lifetime limits, and what happens at them.
struct AutostopPolicy {
  long idle_seconds = 0;          ///< 0: no idle limit.
  long max_lifetime_seconds = 0;  ///< 0: no lifetime limit.
  std::string action = "stop";    ///< "stop" or "terminate".
  int gpu_threshold = 10;         ///< Percent utilisation below which a GPU counts as idle.

  bool operator==(const AutostopPolicy&) const = default;
};

/// Cost control state of the machine.
struct CostControl {
  std::optional<AutostopPolicy> autostop;  ///< nullopt: off.
  bool agent_on_host = true;               ///< The agent for `autostop` is installed on the host.
  /// What the host's own power-off becomes at the provider: "stop", "terminate", or empty where
  /// the driver has no such setting.
  std::string power_off_action;
  std::string launched_at;           ///< RFC 3339 UTC start of the current run; empty: unknown.
  std::optional<double> spot_price;  ///< USD per hour the provider charges now, where known.

  bool operator==(const CostControl&) const = default;
};

/// One node of a cluster (`create NAME --nodes N`, docs/clusters.md): its rank, its provider
/// resource and where it is reached. The SSH user, port and key are the record's own.
struct ClusterNode {
  int rank = 0;
  std::string id;          ///< Provider id of the node's machine (i-...).
  std::string host;        ///< Address SSH reaches it at; empty while stopped.
  std::string private_ip;  ///< Address the other nodes reach it at (rank 0's: MASTER_ADDR).
  std::string host_key;    ///< Pinned host public key ("ssh-ed25519 AAAA...").
  std::string last_state;  ///< Last state seen, as MachineRecord::last_state.

  bool operator==(const ClusterNode&) const = default;
};

/// The cluster section of a record: N machines launched together, placed close together, that
/// share the record's security group, placement group and login key (its ledger).
struct Cluster {
  int size = 0;                    ///< N, as asked for.
  std::vector<ClusterNode> nodes;  ///< In rank order once launched (all N or none).

  bool operator==(const Cluster&) const = default;
};

/// The record kept in <home>/machines/<name>/machine.json. Never holds cloud credentials.
/// Version 3 adds the optional cluster section (an older gpumachine would take a cluster for its
/// node 0). Version 2 splits what the core owns (typed fields) from the driver's own settings (an
/// opaque blob only the driver reads); store::migrate_record() reads version 1.
struct MachineRecord {
  static constexpr int k_schema_version = 3;

  int schema_version = k_schema_version;
  std::string name;
  std::string id;      ///< Per-machine UUID, also used to tag cloud resources.
  std::string driver;  ///< Registry name of the driver ("generic", "ec2").
  CreateProgress progress;
  MachineSize size;
  ProvisionChoices provision;
  CostControl cost;
  /// The driver's own typed config, serialized by the driver (an opaque object to the core);
  /// nothing outside the driver's folder reads it.
  nlohmann::json driver_config = nlohmann::json::object();
  SshTarget ssh;
  std::string created_at;  ///< RFC 3339 UTC.
  std::string updated_at;  ///< RFC 3339 UTC.
  std::vector<Resource> resources;
  nlohmann::json facts = nlohmann::json::object();    ///< Host facts and probe results.
  nlohmann::json timings = nlohmann::json::object();  ///< Seconds per create phase.
  std::string last_state;                             ///< Last state seen, for `ls --cached`.
  /// Set for a cluster: ssh and last_state are then node 0's, and the ledger holds every node's
  /// resources beside the shared ones.
  std::optional<Cluster> cluster;

  /// The ledger entry of this kind and id, or nullptr.
  Resource* find_resource(std::string_view kind, std::string_view id);
};

void to_json(nlohmann::json& j, const SshTarget& t);
void from_json(const nlohmann::json& j, SshTarget& t);
void to_json(nlohmann::json& j, const Resource& r);
void from_json(const nlohmann::json& j, Resource& r);
void to_json(nlohmann::json& j, const CreateProgress& p);
void from_json(const nlohmann::json& j, CreateProgress& p);
void to_json(nlohmann::json& j, const MachineSize& s);
void from_json(const nlohmann::json& j, MachineSize& s);
void to_json(nlohmann::json& j, const ProvisionChoices& p);
void from_json(const nlohmann::json& j, ProvisionChoices& p);
void to_json(nlohmann::json& j, const AutostopPolicy& a);
void from_json(const nlohmann::json& j, AutostopPolicy& a);
void to_json(nlohmann::json& j, const CostControl& c);
void from_json(const nlohmann::json& j, CostControl& c);
void to_json(nlohmann::json& j, const ClusterNode& n);
void from_json(const nlohmann::json& j, ClusterNode& n);
void to_json(nlohmann::json& j, const Cluster& c);
void from_json(const nlohmann::json& j, Cluster& c);
void to_json(nlohmann::json& j, const MachineRecord& r);
/// Reads the current schema only; store::migrate_record() brings older ones up to it first.
void from_json(const nlohmann::json& j, MachineRecord& r);

}  // namespace gm
