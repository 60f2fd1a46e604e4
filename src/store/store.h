// The machine store: <home>/machines/<name>/{machine.json, id_ed25519, id_ed25519.pub,
// known_hosts}, <home>/locks/<name>.lock, and <home>/ssh_config with a Host block per machine.
// Writes are atomic and durable; key files 0600, directories 0700; never holds cloud credentials.
#pragma once

#include "gm/machine.h"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::store {

/// Throws UsageError unless name is 1-63 of [a-z0-9-], starting with a letter or digit
/// (the message states the rule).
void validate_name(std::string_view name);

class Store;

/// Holds a machine's lock (flock on <home>/locks/<name>.lock) until destroyed. Only
/// Store::lock() makes a held one, and the store's writers ask for it: whoever changes a
/// machine's files holds its lock (a default-constructed or moved-from lock holds nothing).
class MachineLock {
 public:
  MachineLock() = default;
  MachineLock(MachineLock&& other) noexcept;
  MachineLock& operator=(MachineLock&& other) noexcept;
  ~MachineLock();

  /// True when this holds the lock of machine `name` of the store at `home`.
  bool holds(const std::filesystem::path& home, std::string_view name) const;

 private:
  friend class Store;
  MachineLock(int fd, std::filesystem::path home, std::string name)
      : m_fd(fd), m_home(std::move(home)), m_name(std::move(name)) {}

  int m_fd = -1;
  std::filesystem::path m_home;
  std::string m_name;
};

/// One row of list(): a record, or the error that kept it from loading.
struct Entry {
  std::string name;
  std::optional<MachineRecord> record;
  std::string error;  ///< Non-empty when the record is corrupt or unreadable.
};

class Store {
 public:
  /// home: the gpumachine home directory (created 0700 on first write).
  explicit Store(std::filesystem::path home);

  const std::filesystem::path& home() const { return m_home; }
  /// <home>/machines/<name>. This and every other member taking a name throws UsageError for an
  /// invalid one, so no name can reach outside the store.
  std::filesystem::path machine_dir(std::string_view name) const;
  std::filesystem::path record_path(std::string_view name) const;
  std::filesystem::path key_path(std::string_view name) const;          ///< id_ed25519
  std::filesystem::path known_hosts_path(std::string_view name) const;  ///< pinned key file
  std::filesystem::path ssh_config_path() const;                        ///< <home>/ssh_config

  /// True when the machine's directory exists (even if its record is corrupt or missing).
  bool exists(std::string_view name) const;
  /// True when the machine's record file exists. A directory without one holds nothing in a
  /// cloud (records are saved before anything is created): the remains of an old version's
  /// interrupted create, which `rm` removes and `create` replaces.
  bool has_record(std::string_view name) const;
  /// Throws NotFoundError ("did you mean" among existing names, hint `gpumachine ls`) or
  /// Error naming the file when it is missing, corrupt or has an unsupported schema_version.
  MachineRecord load(std::string_view name) const;
  /// Every machine directory, sorted by name; a corrupt record is a row with its error. Reads each
  /// record once and writes nothing.
  std::vector<Entry> list() const;
  /// Every machine name, sorted.
  std::vector<std::string> names() const;

  /// Writes machine.json atomically (setting updated_at, and created_at when empty); when the SSH
  /// target changed (or the record is new), also writes known_hosts from record.ssh.host_key and
  /// refreshes ssh_config. A new machine's directory appears with its record in it (made aside,
  /// then renamed), so no kill leaves a directory without a record. Throws unless `lock` holds
  /// the machine's lock.
  void save(const MachineLock& lock, MachineRecord& record);
  /// Writes a file in the machine's directory atomically with mode 0600.
  void write_private_file(std::string_view name, std::string_view filename,
                          std::string_view content);
  /// Deletes the machine's directory and refreshes ssh_config. Missing is fine. Leaves the lock
  /// file, which the caller holds (throws unless `lock` holds it).
  void remove(const MachineLock& lock, std::string_view name);

  /// Takes the machine's lock, waiting up to `wait`; throws LockedError saying which command
  /// holds it (pid and verb are written into the lock file) when it stays taken.
  MachineLock lock(std::string_view name, std::string_view verb,
                   std::chrono::milliseconds wait = std::chrono::seconds(3));

  /// This home's identity: a random id kept in <home>/home_id, made on first use (the first
  /// writer wins a race). Cloud resources are tagged with it, so `gc` tells this home's from
  /// another's (a teammate, CI, a second laptop).
  std::string home_id() const;

  /// Rewrites <home>/ssh_config from all loadable records (atomic; skipped when unchanged).
  void update_ssh_config() const;

 private:
  /// The SSH target of the stored record, or nullopt when there is none (or it is unreadable).
  std::optional<SshTarget> previous_ssh_target(std::string_view name) const;
  /// Throws Error (a bug in the caller) unless lock holds machine name's lock.
  void check_locked(const MachineLock& lock, std::string_view name, std::string_view what) const;
  /// Renames a machine's directory aside and deletes it.
  void delete_dir(std::string_view name);

  std::filesystem::path m_home;
};

/// The ssh_config text for these records (Host NAME blocks: HostName, User, Port, IdentityFile,
/// IdentitiesOnly yes, UserKnownHostsFile, StrictHostKeyChecking yes).
std::string render_ssh_config(const Store& store, const std::vector<MachineRecord>& records);

/// Adds "Include <home>/ssh_config" at the top of the user's ~/.ssh/config once (idempotent);
/// returns true when it changed the file. Creates ~/.ssh (0700) and the file (0600) if missing,
/// keeps the rest byte for byte, and edits the target when the file is a symbolic link.
bool install_ssh_config_include(const std::filesystem::path& user_ssh_config,
                                const std::filesystem::path& home_ssh_config);

}  // namespace gm::store
