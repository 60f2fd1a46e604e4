#include "store/store.h"

#include "gm/error.h"
#include "store/temp_home.h"
#include "support/scoped_env.h"
#include "util/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace gm::store {
namespace {

using testing::full_record;
using testing::mode_of;
using testing::TempDir;

TEST(StoreName, ValidationTable) {
  struct Case {
    std::string name;
    bool valid;
  };
  std::vector<Case> cases = {
      {"gpu1", true},
      {"a", true},
      {"0", true},
      {"9lives", true},
      {"my-gpu-box", true},
      {"a-", true},
      {std::string(63, 'a'), true},
      {std::string(64, 'a'), false},
      {"", false},
      {"-gpu", false},
      {"GPU1", false},
      {"gpu_1", false},
      {"gpu.1", false},
      {"gpu 1", false},
      {"../etc", false},
      {"gpu/1", false},
      {"gpü", false},
  };
  for (const Case& c : cases) {
    if (c.valid) {
      EXPECT_NO_THROW(validate_name(c.name)) << c.name;
    } else {
      try {
        validate_name(c.name);
        ADD_FAILURE() << "accepted '" << c.name << "'";
      } catch (const UsageError& e) {
        EXPECT_EQ(e.subject(), "machine '" + c.name + "'");
        EXPECT_NE(std::string(e.what()).find("lowercase letters, digits and dashes"),
                  std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("1-63"), std::string::npos) << e.what();
        EXPECT_EQ(e.exit_code(), exit_code::k_usage);
      }
    }
  }
}

TEST(StoreName, PathsRefuseInvalidNames) {
  TempDir tmp;
  Store store(tmp.home());
  EXPECT_THROW(store.machine_dir("../x"), UsageError);
  EXPECT_THROW(store.load("Bad"), UsageError);
  EXPECT_THROW(store.remove(MachineLock(), "../x"), UsageError);
  EXPECT_EQ(store.record_path("gpu1"), tmp.home() / "machines" / "gpu1" / "machine.json");
  EXPECT_EQ(store.key_path("gpu1"), tmp.home() / "machines" / "gpu1" / "id_ed25519");
  EXPECT_EQ(store.known_hosts_path("gpu1"), tmp.home() / "machines" / "gpu1" / "known_hosts");
  EXPECT_EQ(store.ssh_config_path(), tmp.home() / "ssh_config");
}

TEST(StoreRecord, RoundTripsEveryField) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord saved = full_record("gpu1", "203.0.113.7");
  saved.created_at = "2026-01-02T03:04:05Z";
  store.save(store.lock(saved.name, "test"), saved);
  EXPECT_EQ(saved.created_at, "2026-01-02T03:04:05Z");  // Kept when already set.
  EXPECT_FALSE(saved.updated_at.empty());

  MachineRecord loaded = store.load("gpu1");
  EXPECT_EQ(loaded.schema_version, MachineRecord::k_schema_version);
  EXPECT_EQ(loaded.name, saved.name);
  EXPECT_EQ(loaded.id, saved.id);
  EXPECT_EQ(loaded.driver, saved.driver);
  EXPECT_EQ(loaded.driver_config, saved.driver_config);
  EXPECT_EQ(loaded.ssh.host, saved.ssh.host);
  EXPECT_EQ(loaded.ssh.port, saved.ssh.port);
  EXPECT_EQ(loaded.ssh.user, saved.ssh.user);
  EXPECT_EQ(loaded.ssh.key_path, saved.ssh.key_path);
  EXPECT_EQ(loaded.ssh.host_key, saved.ssh.host_key);
  EXPECT_EQ(loaded.created_at, saved.created_at);
  EXPECT_EQ(loaded.updated_at, saved.updated_at);
  ASSERT_EQ(loaded.resources.size(), saved.resources.size());
  for (std::size_t i = 0; i < saved.resources.size(); ++i) {
    EXPECT_EQ(loaded.resources[i].kind, saved.resources[i].kind);
    EXPECT_EQ(loaded.resources[i].id, saved.resources[i].id);
    EXPECT_EQ(loaded.resources[i].region, saved.resources[i].region);
    EXPECT_EQ(loaded.resources[i].status, saved.resources[i].status);
  }
  EXPECT_EQ(loaded.facts, saved.facts);
  EXPECT_EQ(loaded.timings, saved.timings);
  EXPECT_EQ(loaded.last_state, saved.last_state);
  EXPECT_TRUE(store.exists("gpu1"));
  EXPECT_FALSE(store.exists("gpu2"));
}

TEST(StoreRecord, SaveStampsTimes) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "");
  store.save(store.lock(r.name, "test"), r);
  EXPECT_FALSE(r.created_at.empty());
  EXPECT_EQ(r.created_at, r.updated_at);
  EXPECT_EQ(r.created_at.back(), 'Z');
  std::string created = r.created_at;
  r.updated_at = "2000-01-01T00:00:00Z";
  store.save(store.lock(r.name, "test"), r);
  EXPECT_EQ(r.created_at, created);
  EXPECT_NE(r.updated_at, "2000-01-01T00:00:00Z");
}

TEST(StoreRecord, WritesPinnedKnownHosts) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  store.save(store.lock(r.name, "test"), r);
  EXPECT_EQ(util::read_file(store.known_hosts_path("gpu1")),
            "[203.0.113.7]:2222 " + r.ssh.host_key + "\n");
  r.ssh.port = 22;
  store.save(store.lock(r.name, "test"), r);
  EXPECT_EQ(util::read_file(store.known_hosts_path("gpu1")),
            "203.0.113.7 " + r.ssh.host_key + "\n");

  MachineRecord unpinned = full_record("gpu2", "203.0.113.8");
  unpinned.ssh.host_key.clear();
  store.save(store.lock(unpinned.name, "test"), unpinned);
  EXPECT_FALSE(std::filesystem::exists(store.known_hosts_path("gpu2")));
}

TEST(StoreRecord, RefusesLineBreakingSshFields) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "203.0.113.7\n  ProxyCommand evil");
  EXPECT_THROW(store.save(store.lock(r.name, "test"), r), UsageError);
  r = full_record("gpu1", "203.0.113.7");
  r.ssh.user = "ubuntu root";
  EXPECT_THROW(store.save(store.lock(r.name, "test"), r), UsageError);
  r = full_record("gpu1", "203.0.113.7");
  r.ssh.host_key += "\nevil";
  EXPECT_THROW(store.save(store.lock(r.name, "test"), r), UsageError);
  EXPECT_FALSE(store.exists("gpu1"));
}

TEST(StorePermissions, PrivateDirectoriesAndFiles) {
  TempDir tmp;
  Store store(tmp.home());
  // A permissive umask must not loosen anything: modes are set explicitly.
  mode_t old_umask = ::umask(0);
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  store.save(store.lock(r.name, "test"), r);
  store.write_private_file("gpu1", "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\n");
  store.write_private_file("gpu1", "id_ed25519.pub", "ssh-ed25519 AAAA gpu1\n");
  MachineLock lock = store.lock("gpu1", "create");
  ::umask(old_umask);

  EXPECT_EQ(mode_of(tmp.home()), 0700U);
  EXPECT_EQ(mode_of(tmp.home() / "machines"), 0700U);
  EXPECT_EQ(mode_of(store.machine_dir("gpu1")), 0700U);
  EXPECT_EQ(mode_of(tmp.home() / "locks"), 0700U);
  EXPECT_EQ(mode_of(store.record_path("gpu1")), 0600U);
  EXPECT_EQ(mode_of(store.key_path("gpu1")), 0600U);
  EXPECT_EQ(mode_of(store.machine_dir("gpu1") / "id_ed25519.pub"), 0600U);
  EXPECT_EQ(mode_of(store.known_hosts_path("gpu1")), 0600U);
  EXPECT_EQ(mode_of(store.ssh_config_path()), 0600U);
  EXPECT_EQ(mode_of(tmp.home() / "locks" / "gpu1.lock"), 0600U);
}

TEST(StoreAtomicity, NoTempFilesAndWholeReplacement) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord big = full_record("gpu1", "203.0.113.7");
  for (int i = 0; i < 200; ++i) {
    big.resources.push_back({"volume", "vol-" + std::to_string(i), "us-east-1", "created"});
  }
  store.save(store.lock(big.name, "test"), big);
  MachineRecord small;
  small.name = "gpu1";
  small.driver = "generic";
  store.save(store.lock(small.name, "test"), small);

  MachineRecord loaded = store.load("gpu1");
  EXPECT_EQ(loaded.driver, "generic");
  EXPECT_TRUE(loaded.resources.empty());
  EXPECT_TRUE(loaded.ssh.host.empty());
  // The file is exactly the new record, with nothing of the longer old one left behind.
  EXPECT_EQ(util::read_file(store.record_path("gpu1")), nlohmann::json(small).dump(2) + "\n");

  for (const auto& dir : {tmp.home(), tmp.home() / "machines", store.machine_dir("gpu1")}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      EXPECT_NE(entry.path().filename().string().front(), '.') << entry.path();
    }
  }
}

TEST(StoreList, SortedAndEmptyWithoutHome) {
  TempDir tmp;
  Store store(tmp.home());
  EXPECT_TRUE(store.list().empty());
  EXPECT_TRUE(store.names().empty());
  for (const char* name : {"gpu2", "a100", "gpu1"}) {
    MachineRecord r = full_record(name, "203.0.113.7");
    store.save(store.lock(r.name, "test"), r);
  }
  std::vector<Entry> entries = store.list();
  ASSERT_EQ(entries.size(), 3U);
  EXPECT_EQ(entries[0].name, "a100");
  EXPECT_EQ(entries[1].name, "gpu1");
  EXPECT_EQ(entries[2].name, "gpu2");
  for (const Entry& e : entries) {
    ASSERT_TRUE(e.record) << e.error;
    EXPECT_EQ(e.record->name, e.name);
    EXPECT_TRUE(e.error.empty());
  }
  EXPECT_EQ(store.names(), (std::vector<std::string>{"a100", "gpu1", "gpu2"}));
}

TEST(StoreCorrupt, ListShowsErrorRowAndLoadNamesThePath) {
  TempDir tmp;
  Store store(tmp.home());
  for (const char* name : {"gpu1", "gpu2", "gpu3"}) {
    MachineRecord r = full_record(name, "203.0.113.7");
    store.save(store.lock(r.name, "test"), r);
  }
  util::write_file_atomic(store.record_path("gpu2"), "{\"name\": \"gpu2\", \"driver\": ");
  // A directory left without a record at all (e.g. by hand) is a row too.
  std::filesystem::create_directories(store.machine_dir("gpu4"));

  std::vector<Entry> entries = store.list();
  ASSERT_EQ(entries.size(), 4U);
  EXPECT_TRUE(entries[0].record);
  EXPECT_FALSE(entries[1].record);
  EXPECT_NE(entries[1].error.find(store.record_path("gpu2").string()), std::string::npos)
      << entries[1].error;
  EXPECT_NE(entries[1].error.find("parse error"), std::string::npos) << entries[1].error;
  EXPECT_TRUE(entries[2].record);
  EXPECT_FALSE(entries[3].record);
  EXPECT_NE(entries[3].error.find("no record"), std::string::npos) << entries[3].error;

  try {
    store.load("gpu2");
    FAIL() << "loaded a corrupt record";
  } catch (const NotFoundError&) {
    FAIL() << "corrupt is not missing";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(store.record_path("gpu2").string()), std::string::npos) << what;
    EXPECT_NE(what.find("parse error"), std::string::npos) << what;
    EXPECT_NE(e.hint().find("inspect or remove"), std::string::npos) << e.hint();
    EXPECT_NE(e.hint().find(store.machine_dir("gpu2").string()), std::string::npos) << e.hint();
  }
  EXPECT_THROW(store.load("gpu4"), Error);
  // ssh_config is still written from the records that load.
  MachineRecord r = full_record("gpu5", "203.0.113.9");
  EXPECT_NO_THROW(store.save(store.lock(r.name, "test"), r));
  std::string config = util::read_file(store.ssh_config_path());
  EXPECT_NE(config.find("Host gpu1\n"), std::string::npos);
  EXPECT_EQ(config.find("Host gpu2\n"), std::string::npos);
  EXPECT_NE(config.find("Host gpu5\n"), std::string::npos);
}

TEST(StoreCorrupt, WrongShapesAreCorrupt) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  store.save(store.lock(r.name, "test"), r);
  for (const char* text : {"[]", "{\"ssh\": {\"port\": \"22\"}}", "{\"schema_version\": 0}",
                           "{\"name\": \"other\"}"}) {
    util::write_file_atomic(store.record_path("gpu1"), text);
    EXPECT_THROW(store.load("gpu1"), Error) << text;
    std::vector<Entry> entries = store.list();
    ASSERT_EQ(entries.size(), 1U);
    EXPECT_FALSE(entries[0].error.empty()) << text;
  }
}

TEST(StoreCorrupt, NewerSchemaSaysNewerGpumachine) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  store.save(store.lock(r.name, "test"), r);
  nlohmann::json j = r;
  j["schema_version"] = MachineRecord::k_schema_version + 1;
  j["ssh"] = "a shape this version cannot read";
  util::write_file_atomic(store.record_path("gpu1"), j.dump());
  try {
    store.load("gpu1");
    FAIL() << "loaded a newer record";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer gpumachine"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(store.record_path("gpu1").string()), std::string::npos);
  }
  std::vector<Entry> entries = store.list();
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_NE(entries[0].error.find("newer gpumachine"), std::string::npos) << entries[0].error;
}

TEST(StoreMissing, NotFoundWithDidYouMean) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  store.save(store.lock(r.name, "test"), r);
  try {
    store.load("gpu2");
    FAIL() << "loaded a missing machine";
  } catch (const NotFoundError& e) {
    EXPECT_STREQ(e.what(), "machine 'gpu2': not found (did you mean 'gpu1'?)");
    EXPECT_EQ(e.hint(), "run \"gpumachine ls\" to list machines");
    EXPECT_EQ(e.exit_code(), exit_code::k_not_found);
  }
  Store empty(tmp.path() / "nowhere");
  try {
    empty.load("gpu1");
    FAIL() << "loaded from an empty store";
  } catch (const NotFoundError& e) {
    EXPECT_STREQ(e.what(), "machine 'gpu1': not found");
  }
}

TEST(StoreRemove, DeletesDirectoryKeepsLockAndRefreshesConfig) {
  TempDir tmp;
  Store store(tmp.home());
  for (const char* name : {"gpu1", "gpu2"}) {
    MachineRecord r = full_record(name, "203.0.113.7");
    store.save(store.lock(r.name, "test"), r);
  }
  store.write_private_file("gpu1", "id_ed25519", "secret");
  {
    MachineLock lock = store.lock("gpu1", "rm");
    store.remove(lock, "gpu1");
    EXPECT_TRUE(std::filesystem::exists(tmp.home() / "locks" / "gpu1.lock"));
  }
  EXPECT_FALSE(store.exists("gpu1"));
  EXPECT_FALSE(std::filesystem::exists(store.machine_dir("gpu1")));
  EXPECT_EQ(store.names(), std::vector<std::string>{"gpu2"});
  std::string config = util::read_file(store.ssh_config_path());
  EXPECT_EQ(config.find("Host gpu1\n"), std::string::npos);
  EXPECT_NE(config.find("Host gpu2\n"), std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator(tmp.home() / "machines")) {
    EXPECT_NE(entry.path().filename().string().front(), '.') << entry.path();
  }
  EXPECT_NO_THROW(store.remove(store.lock("gpu1", "test"), "gpu1"));
  Store nowhere(tmp.path() / "nowhere");
  EXPECT_NO_THROW(nowhere.remove(nowhere.lock("gpu1", "test"), "gpu1"));
}

TEST(StoreFiles, WritePrivateFileRefusesPaths) {
  TempDir tmp;
  Store store(tmp.home());
  EXPECT_THROW(store.write_private_file("gpu1", "../x", "x"), Error);
  EXPECT_THROW(store.write_private_file("gpu1", "", "x"), Error);
  EXPECT_THROW(store.write_private_file("gpu1", ".hidden", "x"), Error);
  store.write_private_file("gpu1", "id_ed25519", "key");
  EXPECT_EQ(util::read_file(store.key_path("gpu1")), "key");
}

using gm::test::EnvVar;

TEST(StoreCredentials, RefusesRecordsHoldingSecrets) {
  TempDir tmp;
  Store store(tmp.home());
  const char* secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  EnvVar key("AWS_SECRET_ACCESS_KEY", secret);
  EnvVar token("AWS_SESSION_TOKEN", "short");  // Too short to check: would match by chance.
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  r.driver_config["oops"] = std::string("prefix-") + secret;
  try {
    store.save(store.lock(r.name, "test"), r);
    FAIL() << "saved a secret";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << what;
    EXPECT_EQ(what.find(secret), std::string::npos) << "the message leaks the secret";
    EXPECT_EQ(e.hint().find(secret), std::string::npos);
  }
  EXPECT_FALSE(store.exists("gpu1"));
  EXPECT_TRUE(r.updated_at.empty());  // Untouched when nothing was written.

  r.driver_config.erase("oops");
  r.facts["note"] = "short";  // The short session token is not checked.
  EXPECT_NO_THROW(store.save(store.lock(r.name, "test"), r));
  {
    EnvVar session("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLETOKEN");
    r.facts["token"] = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";
    EXPECT_THROW(store.save(store.lock(r.name, "test"), r), Error);
  }
  EXPECT_EQ(store.load("gpu1").facts.count("token"), 0U);
}

// Only a holder of the machine's lock writes its files (status and probe once saved without it,
// bringing back machines that rm had just removed).
TEST(StoreLockedWrites, SaveAndRemoveRefuseACallerWithoutTheLock) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord r = full_record("gpu1", "203.0.113.7");
  EXPECT_THROW(store.save(MachineLock(), r), Error);
  EXPECT_THROW(store.save(store.lock("gpu2", "test"), r), Error);
  EXPECT_THROW(store.save(Store(tmp.path() / "other").lock("gpu1", "test"), r), Error);
  EXPECT_FALSE(store.exists("gpu1"));
  MachineLock lock = store.lock("gpu1", "test");
  store.save(lock, r);
  MachineLock moved = std::move(lock);
  EXPECT_THROW(store.save(lock, r), Error);  // NOLINT(bugprone-use-after-move): holds nothing
  EXPECT_THROW(store.remove(store.lock("gpu2", "test"), "gpu1"), Error);
  EXPECT_TRUE(store.has_record("gpu1"));
  store.remove(moved, "gpu1");
  EXPECT_FALSE(store.exists("gpu1"));
}

// A kill between making a machine's directory and writing its record left a directory without
// one, which blocked `rm` and `create`. A new machine's directory now appears with its record,
// and such a leftover is replaced by the first save and shown in list() with the fix.
TEST(StoreLockedWrites, ADirectoryWithoutARecordIsReplacedAndExplained) {
  TempDir tmp;
  Store store(tmp.home());
  std::filesystem::create_directories(store.machine_dir("gpu1"));
  util::write_file_atomic(store.machine_dir("gpu1") / "known_hosts", "stale\n", 0600);
  EXPECT_TRUE(store.exists("gpu1"));
  EXPECT_FALSE(store.has_record("gpu1"));
  std::vector<Entry> entries = store.list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_NE(entries[0].error.find("`gpumachine rm gpu1`"), std::string::npos) << entries[0].error;
  try {
    store.load("gpu1");
    ADD_FAILURE() << "loaded a record that is not there";
  } catch (const NotFoundError&) {
    ADD_FAILURE() << "a directory without a record is not 'not found'";
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("`gpumachine rm gpu1`"), std::string::npos) << e.hint();
  }

  MachineRecord r = full_record("gpu1", "203.0.113.7");
  store.save(store.lock("gpu1", "test"), r);
  EXPECT_EQ(store.load("gpu1").ssh.host, "203.0.113.7");
  EXPECT_NE(util::read_file(store.known_hosts_path("gpu1")).find(r.ssh.host_key),
            std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator(tmp.home() / "machines")) {
    EXPECT_EQ(entry.path().filename(), "gpu1");  // nothing left aside
  }
}

// Free-form parts of a record that are not objects make it corrupt (a row with its error), not a
// record that breaks every reader.
TEST(StoreLockedWrites, FreeFormFieldsMustBeObjects) {
  TempDir tmp;
  Store store(tmp.home());
  std::filesystem::create_directories(store.machine_dir("gpu1"));
  util::write_file_atomic(store.record_path("gpu1"),
                          R"({"schema_version": 1, "name": "gpu1", "driver": "ec2", "facts": [1]})",
                          0600);
  EXPECT_THROW(store.load("gpu1"), Error);
  std::vector<Entry> entries = store.list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(entries[0].record);
  EXPECT_NE(entries[0].error.find("facts is array"), std::string::npos) << entries[0].error;
}

}  // namespace
}  // namespace gm::store
