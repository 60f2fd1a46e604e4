#include "store/store.h"

#include "gm/error.h"
#include "store/record_migrate.h"
#include "util/crypto.h"
#include "util/fd.h"
#include "util/fs.h"
#include "util/spellcheck.h"
#include "util/time.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <system_error>
#include <utility>

namespace gm::store {

using util::Fd;

namespace {

constexpr std::size_t k_max_name_length = 63;
constexpr const char* k_record_file = "machine.json";
constexpr const char* k_key_file = "id_ed25519";
constexpr const char* k_known_hosts_file = "known_hosts";
// Underscores are not allowed in machine names, so this lock can never collide with a machine's.
constexpr const char* k_ssh_config_lock = "ssh_config.lock";
// Environment variables whose values must never reach the store.
constexpr const char* k_secret_env_vars[] = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"};
// Shorter values would match ordinary record text by accident.
constexpr std::size_t k_min_secret_length = 8;

std::string machine_subject(std::string_view name) {
  return "machine '" + std::string(name) + "'";
}

// Why a machine directory can lack a record, and the fix.
constexpr const char* k_no_record_cause =
    "a create was killed before saving it; nothing was created in a cloud";
std::string no_record_hint(std::string_view name) {
  return "`gpumachine rm " + std::string(name) + "` removes the directory";
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

bool is_valid_name(std::string_view name) {
  return !name.empty() && name.size() <= k_max_name_length && name.front() != '-' &&
         std::all_of(name.begin(), name.end(), is_name_char);
}

/// Reads a whole file relative to dirfd with one open, one fstat and (usually) one read, which
/// is what keeps list() fast. Returns false with errno set on failure.
bool read_at(int dirfd, const char* relative, std::string& out) {
  Fd fd(::openat(dirfd, relative, O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return false;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return false;
  }
  // One byte more than the size, so a file that grew since fstat is still read to the end.
  out.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t done = 0;
  for (;;) {
    if (done == out.size()) {
      out.resize(out.size() * 2);
    }
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    if (n == 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return true;
}

/// Parses a record's text; throws gm::Error naming the file on any problem.
MachineRecord parse_record(std::string_view name, const std::filesystem::path& path,
                           const std::string& text) {
  std::string hint = "inspect or remove the directory " + path.parent_path().string();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(machine_subject(name), "corrupt record " + path.string(), e.what(), hint);
  }
  if (!j.is_object()) {
    throw Error(machine_subject(name), "corrupt record " + path.string(),
                std::string("expected a JSON object, found ") + j.type_name(), hint);
  }
  // Checked before from_json(): a newer schema may not even deserialise into this version's types.
  if (auto it = j.find("schema_version"); it != j.end()) {
    if (!it->is_number_integer() || it->get<long long>() < 1) {
      throw Error(machine_subject(name), "corrupt record " + path.string(),
                  "schema_version is " + it->dump() + ", expected a positive integer", hint);
    }
    if (it->get<long long>() > MachineRecord::k_schema_version) {
      throw Error(machine_subject(name),
                  "record " + path.string() + " was written by a newer gpumachine",
                  "schema_version " + it->dump() + ", this gpumachine supports up to " +
                      std::to_string(MachineRecord::k_schema_version),
                  "upgrade gpumachine to manage this machine");
    }
  }
  MachineRecord record;
  try {
    migrate_record(j);
    j.get_to(record);
  } catch (const nlohmann::json::exception& e) {
    throw Error(machine_subject(name), "corrupt record " + path.string(), e.what(), hint);
  }
  // Free-form, but every reader indexes them by key.
  for (const auto& [field, value] :
       {std::pair<const char*, const nlohmann::json*>{"driver_config", &record.driver_config},
        {"facts", &record.facts},
        {"timings", &record.timings}}) {
    if (!value->is_object()) {
      throw Error(machine_subject(name), "corrupt record " + path.string(),
                  std::string(field) + " is " + value->type_name() + ", expected an object", hint);
    }
  }
  if (record.name.empty()) {
    record.name = std::string(name);
  } else if (record.name != name) {
    throw Error(machine_subject(name), "corrupt record " + path.string(),
                "it names machine '" + record.name + "'", hint);
  }
  return record;
}

/// "host key" or "[host]:port key", the form OpenSSH looks up for a non-default port.
std::string pinned_known_hosts_line(const SshTarget& ssh) {
  std::string host = ssh.port == 22 ? ssh.host : "[" + ssh.host + "]:" + std::to_string(ssh.port);
  return host + " " + ssh.host_key + "\n";
}

/// The machine's known_hosts: its pinned key, and each other cluster node's with an address.
std::string pinned_known_hosts(const MachineRecord& record) {
  std::string text = pinned_known_hosts_line(record.ssh);
  if (record.cluster) {
    for (const ClusterNode& node : record.cluster->nodes) {
      SshTarget ssh = record.ssh;
      ssh.host = node.host;
      ssh.host_key = node.host_key;
      if (node.rank != 0 && !node.host.empty() && !node.host_key.empty()) {
        text += pinned_known_hosts_line(ssh);
      }
    }
  }
  return text;
}

/// Refuses values that would break out of their line in ssh_config or known_hosts.
void check_ssh_field(std::string_view name, std::string_view field, std::string_view value,
                     bool allow_space) {
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || (!allow_space && (c == ' ' || c == '"' || c == '#'))) {
      throw UsageError(machine_subject(name),
                       "SSH " + std::string(field) + " '" + std::string(value) + "' contains " +
                           (allow_space ? "a control character"
                                        : "whitespace, a quote, '#' or a control character"));
    }
  }
}

void check_no_credentials(std::string_view name, std::string_view text) {
  for (const char* var : k_secret_env_vars) {
    const char* value = std::getenv(var);
    if (value == nullptr || std::strlen(value) < k_min_secret_length) {
      continue;
    }
    if (text.find(value) != std::string_view::npos) {
      // Never echo the value itself.
      throw Error(machine_subject(name), "refusing to save the record",
                  std::string("it contains the value of ") + var,
                  "cloud credentials must never be stored; this is a bug, please report it");
    }
  }
}

/// Holds an exclusive flock for the lifetime of the object (blocking; held only briefly).
class ShortLock {
 public:
  explicit ShortLock(const std::filesystem::path& path)
      : m_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
    if (m_fd.get() < 0) {
      throw Error(path.string(), "cannot open lock file", std::strerror(errno));
    }
    while (::flock(m_fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) {
        throw Error(path.string(), "cannot lock", std::strerror(errno));
      }
    }
  }

 private:
  Fd m_fd;
};

}  // namespace

void validate_name(std::string_view name) {
  if (!is_valid_name(name)) {
    throw UsageError(machine_subject(name),
                     "invalid name: use 1-63 lowercase letters, digits and dashes, starting with "
                     "a letter or digit");
  }
}

Store::Store(std::filesystem::path home) : m_home(std::move(home)) {}

std::filesystem::path Store::machine_dir(std::string_view name) const {
  validate_name(name);
  return m_home / "machines" / name;
}

std::filesystem::path Store::record_path(std::string_view name) const {
  return machine_dir(name) / k_record_file;
}

std::filesystem::path Store::key_path(std::string_view name) const {
  return machine_dir(name) / k_key_file;
}

std::filesystem::path Store::known_hosts_path(std::string_view name) const {
  return machine_dir(name) / k_known_hosts_file;
}

std::filesystem::path Store::ssh_config_path() const {
  return m_home / "ssh_config";
}

bool Store::exists(std::string_view name) const {
  struct stat st {};
  return ::stat(machine_dir(name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Store::has_record(std::string_view name) const {
  return ::access(record_path(name).c_str(), F_OK) == 0;
}

MachineRecord Store::load(std::string_view name) const {
  std::filesystem::path path = record_path(name);
  std::string text;
  if (!read_at(AT_FDCWD, path.c_str(), text)) {
    int err = errno;
    if (err == ENOENT && !exists(name)) {
      throw NotFoundError(machine_subject(name), "not found" + util::did_you_mean(name, names()),
                          "run \"gpumachine ls\" to list machines");
    }
    if (err == ENOENT) {
      throw Error(machine_subject(name), "no record in " + path.parent_path().string(),
                  k_no_record_cause, no_record_hint(name));
    }
    throw Error(machine_subject(name), "cannot read " + path.string(), std::strerror(err),
                "inspect or remove the directory " + path.parent_path().string());
  }
  return parse_record(name, path, text);
}

std::vector<Entry> Store::list() const {
  std::vector<Entry> entries;
  std::filesystem::path machines = m_home / "machines";
  DIR* dir = ::opendir(machines.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) {
      return entries;
    }
    throw Error(machines.string(), "cannot list machines", std::strerror(errno));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  int dirfd = ::dirfd(dir);
  std::string relative;
  std::string text;
  while (dirent* de = ::readdir(dir)) {
    std::string_view name = de->d_name;
    // Dot entries include removals in progress (see remove()).
    if (name.starts_with('.')) {
      continue;
    }
    if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN && de->d_type != DT_LNK) {
      continue;
    }
    Entry entry;
    entry.name = std::string(name);
    if (!is_valid_name(name)) {
      entry.error = "not a valid machine name";
      entries.push_back(std::move(entry));
      continue;
    }
    relative.assign(name);
    relative += '/';
    relative += k_record_file;
    if (!read_at(dirfd, relative.c_str(), text)) {
      int err = errno;
      if (err == ENOTDIR) {
        continue;  // A stray file (d_type was unknown), not a machine.
      }
      struct stat st {};
      if (err == ENOENT && ::fstatat(dirfd, de->d_name, &st, 0) != 0) {
        continue;  // Removed by another command since readdir() saw it.
      }
      entry.error =
          err == ENOENT
              ? std::string("no record: ") + k_no_record_cause + "; " + no_record_hint(name)
              : "cannot read " + (machines / relative).string() + ": " + std::strerror(err);
    } else {
      try {
        entry.record = parse_record(name, machines / relative, text);
      } catch (const Error& e) {
        entry.error = e.problem() + ": " + e.cause();
      }
    }
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  return entries;
}

std::vector<std::string> Store::names() const {
  std::vector<std::string> result;
  std::filesystem::path machines = m_home / "machines";
  DIR* dir = ::opendir(machines.c_str());
  if (dir == nullptr) {
    return result;
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  while (dirent* de = ::readdir(dir)) {
    std::string_view name = de->d_name;
    if (name.starts_with('.') || !is_valid_name(name)) {
      continue;
    }
    if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
      result.emplace_back(name);
    }
  }
  std::sort(result.begin(), result.end());
  return result;
}

void Store::save(const MachineLock& lock, MachineRecord& record) {
  validate_name(record.name);
  check_locked(lock, record.name, "save the record");
  check_ssh_field(record.name, "host", record.ssh.host, false);
  check_ssh_field(record.name, "user", record.ssh.user, false);
  check_ssh_field(record.name, "host key", record.ssh.host_key, true);
  if (record.cluster) {
    for (const ClusterNode& node : record.cluster->nodes) {
      check_ssh_field(record.name, "node host", node.host, false);
      check_ssh_field(record.name, "node host key", node.host_key, true);
    }
  }
  // Work on a copy so the caller's record only changes once it is on disk.
  MachineRecord updated = record;
  std::string now = util::rfc3339(std::chrono::system_clock::now());
  if (updated.created_at.empty()) {
    updated.created_at = now;
  }
  updated.updated_at = now;
  std::string text;
  try {
    text = nlohmann::json(updated).dump(2) + "\n";
  } catch (const nlohmann::json::exception& e) {
    throw Error(machine_subject(record.name), "cannot serialise the record", e.what());
  }
  check_no_credentials(record.name, text);
  std::filesystem::path dir = machine_dir(record.name);
  // The pin and ssh_config depend only on the SSH target; most saves (ledger entries, state,
  // facts, timings) leave it alone, and then neither is rewritten nor every record re-read.
  std::optional<SshTarget> before = previous_ssh_target(record.name);
  bool ssh_changed = !before || *before != updated.ssh;
  // A new machine's files are written aside and the directory renamed into place with them. A
  // directory that is already there without a record (files a driver made before the first save,
  // such as a generic host's own key, or a killed create's) gets the record where it is.
  bool is_new = !has_record(record.name) && !std::filesystem::exists(dir);
  std::filesystem::path target = is_new ? dir.parent_path() / (".creating-" + record.name) : dir;
  if (is_new) {
    util::make_private_dir(dir.parent_path());
    std::error_code ec;
    std::filesystem::remove_all(target, ec);  // a kill's leftover
  }
  util::make_private_dir(target);
  if (!updated.ssh.host_key.empty() &&
      (ssh_changed || updated.cluster || !std::filesystem::exists(target / k_known_hosts_file))) {
    util::write_file_atomic(target / k_known_hosts_file, pinned_known_hosts(updated), 0600);
  }
  util::write_file_atomic(target / k_record_file, text, 0600);
  if (is_new) {
    if (::rename(target.c_str(), dir.c_str()) != 0) {
      throw Error(machine_subject(record.name), "cannot create " + dir.string(),
                  std::strerror(errno));
    }
    util::sync_dir(dir.parent_path());
  }
  record = std::move(updated);
  if (ssh_changed) {
    update_ssh_config();
  }
}

void Store::check_locked(const MachineLock& lock, std::string_view name,
                         std::string_view what) const {
  if (!lock.holds(m_home, name)) {
    throw Error(machine_subject(name), "refusing to " + std::string(what),
                "the caller does not hold the machine's lock",
                "this is a bug in gpumachine, please report it");
  }
}

std::optional<SshTarget> Store::previous_ssh_target(std::string_view name) const {
  try {
    return exists(name) ? std::optional<SshTarget>(load(name).ssh) : std::nullopt;
  } catch (const Error&) {
    return std::nullopt;  // an unreadable old record: treat as new, rewrite everything
  }
}

void Store::write_private_file(std::string_view name, std::string_view filename,
                               std::string_view content) {
  std::filesystem::path dir = machine_dir(name);
  if (filename.empty() || filename.starts_with('.') ||
      filename.find('/') != std::string_view::npos) {
    throw Error(machine_subject(name), "invalid file name '" + std::string(filename) + "'");
  }
  util::make_private_dir(dir);
  util::write_file_atomic(dir / filename, content, 0600);
}

void Store::remove(const MachineLock& lock, std::string_view name) {
  validate_name(name);
  check_locked(lock, name, "remove the machine");
  delete_dir(name);
  update_ssh_config();
}

void Store::delete_dir(std::string_view name) {
  std::filesystem::path dir = machine_dir(name);
  std::filesystem::path machines = dir.parent_path();
  // Renaming first makes removal atomic: a crash mid-way leaves a dot directory that list()
  // ignores, never a half-deleted machine.
  std::filesystem::path doomed = machines / (".removing-" + std::string(name));
  std::error_code ec;
  std::filesystem::remove_all(doomed, ec);
  if (::rename(dir.c_str(), doomed.c_str()) != 0) {
    if (errno == ENOENT) {
      return;
    }
    throw Error(machine_subject(name), "cannot remove " + dir.string(), std::strerror(errno));
  }
  util::sync_dir(machines);
  std::filesystem::remove_all(doomed, ec);
  if (ec) {
    throw Error(machine_subject(name), "cannot remove " + doomed.string(), ec.message(),
                "remove the directory by hand");
  }
}

std::string Store::home_id() const {
  std::filesystem::path path = m_home / "home_id";
  auto read = [&]() -> std::optional<std::string> {
    std::optional<std::string> text = util::try_read_file(path);
    if (text) {
      text->erase(std::remove_if(text->begin(), text->end(), ::isspace), text->end());
    }
    return text && !text->empty() ? text : std::nullopt;
  };
  if (std::optional<std::string> id = read()) {
    return *id;
  }
  // Written whole under another name, then linked into place: link() never replaces, so
  // concurrent first uses agree on one id.
  util::make_private_dir(m_home);
  std::filesystem::path mine = m_home / (".home_id." + util::uuid4());
  util::write_file_atomic(mine, util::uuid4() + "\n", 0600);
  int linked = ::link(mine.c_str(), path.c_str());
  int err = errno;
  std::filesystem::remove(mine);
  if (linked != 0 && err != EEXIST) {
    throw Error(path.string(), "cannot write this home's id", std::strerror(err),
                "check that " + m_home.string() + " is writable");
  }
  util::sync_dir(m_home);
  if (std::optional<std::string> id = read()) {
    return *id;
  }
  throw Error(path.string(), "is empty", {}, "delete it; a new id is made on the next create");
}

void Store::update_ssh_config() const {
  struct stat st {};
  if (::stat(m_home.c_str(), &st) != 0) {
    return;  // No home yet, so no machines and nothing to include.
  }
  util::make_private_dir(m_home / "locks");
  // Serialises concurrent saves of different machines, so none of them writes a file listed
  // before another one's record was saved (a lost update).
  ShortLock guard(m_home / "locks" / k_ssh_config_lock);
  std::vector<MachineRecord> records;
  for (Entry& entry : list()) {
    if (entry.record) {
      records.push_back(std::move(*entry.record));
    }
  }
  std::string text = render_ssh_config(*this, records);
  std::filesystem::path path = ssh_config_path();
  std::string current;
  // Most saves change nothing ssh cares about (state, timings); skip the fsyncs then.
  if (read_at(AT_FDCWD, path.c_str(), current) && current == text) {
    return;
  }
  util::write_file_atomic(path, text, 0600);
}

}  // namespace gm::store
