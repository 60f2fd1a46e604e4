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

/// The record kept in <home>/machines/<name>/machine.json. Never holds cloud credentials.
struct MachineRecord {
  static constexpr int k_schema_version = 1;

  int schema_version = k_schema_version;
  std::string name;
  std::string id;      ///< Per-machine UUID, also used to tag cloud resources.
  std::string driver;  ///< Registry name of the driver ("generic", "ec2").
  nlohmann::json driver_config = nlohmann::json::object();  ///< Driver-specific settings.
  SshTarget ssh;
  std::string created_at;  ///< RFC 3339 UTC.
  std::string updated_at;  ///< RFC 3339 UTC.
  std::vector<Resource> resources;
  nlohmann::json facts = nlohmann::json::object();    ///< Cached host facts (os, cpus, gpus...).
  nlohmann::json timings = nlohmann::json::object();  ///< Seconds per create phase.
  std::string last_state;                             ///< Last state seen, for `ls --cached`.

  /// The ledger entry of this kind and id, or nullptr.
  Resource* find_resource(std::string_view kind, std::string_view id);
};

void to_json(nlohmann::json& j, const SshTarget& t);
void from_json(const nlohmann::json& j, SshTarget& t);
void to_json(nlohmann::json& j, const Resource& r);
void from_json(const nlohmann::json& j, Resource& r);
void to_json(nlohmann::json& j, const MachineRecord& r);
void from_json(const nlohmann::json& j, MachineRecord& r);

}  // namespace gm
