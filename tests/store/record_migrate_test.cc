// Records written by gpumachine 0.1.0 (schema 1; tests/fixtures/records/, made by running that
// version against the EC2 emulator and a generic host) load into the typed schema 2, and a
// record of a newer schema is refused and left as it is.
#include "gm/error.h"
#include "store/store.h"
#include "store/temp_home.h"
#include "util/fs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace gm::store {
namespace {

using testing::TempDir;

/// Puts the fixture \a file into \a store as machine \a name's record and loads it.
MachineRecord load_fixture(Store& store, const std::string& file, const std::string& name) {
  std::string text =
      util::read_file(std::filesystem::path(GM_SOURCE_DIR) / "tests/fixtures/records" / file);
  MachineRecord placeholder{.name = name};
  store.save(store.lock(name, "test"), placeholder);  // makes the directory
  util::write_file_atomic(store.record_path(name), text);
  return store.load(name);
}

TEST(RecordMigration, Version1Ec2RecordsBecomeTypedFields) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord cpu = load_fixture(store, "v1-ec2-cpu1.json", "cpu1");
  EXPECT_EQ(cpu.schema_version, MachineRecord::k_schema_version);
  EXPECT_EQ(cpu.size.region, "us-east-1");
  EXPECT_EQ(cpu.size.instance_type, "t3.micro");
  EXPECT_FALSE(cpu.size.spot);
  EXPECT_EQ(cpu.size.vcpus, 2);
  EXPECT_EQ(cpu.size.memory_mib, 1024);
  EXPECT_EQ(cpu.size.gpu_count, 0);
  EXPECT_FALSE(cpu.progress.incomplete);
  EXPECT_EQ(cpu.cost.power_off_action, "stop");
  EXPECT_EQ(cpu.cost.launched_at, "2026-12-07T20:58:00.014Z");
  EXPECT_FALSE(cpu.cost.autostop);
  EXPECT_TRUE(cpu.cost.agent_on_host);
  EXPECT_EQ(cpu.last_state, "stopped");
  // What the core owns left the driver's config and the facts; the driver's own stayed.
  for (const char* key : {"region", "instance_type", "spot", "create_incomplete",
                          "shutdown_behavior", "provision_overrides", "autostop"}) {
    EXPECT_FALSE(cpu.driver_config.contains(key)) << key;
  }
  EXPECT_EQ(cpu.driver_config["instance_id"], "i-0b0418a8761f5f1cc");
  EXPECT_EQ(cpu.driver_config["sg_name"], "gpumachine-cpu1-0376de0d");
  EXPECT_FALSE(cpu.facts.contains("instance_type"));
  EXPECT_FALSE(cpu.facts.contains("launched_at"));
  EXPECT_EQ(cpu.resources.size(), 3u);

  MachineRecord gpu = load_fixture(store, "v1-ec2-gpu1.json", "gpu1");
  EXPECT_TRUE(gpu.size.spot);
  EXPECT_EQ(gpu.size.instance_type, "g4dn.xlarge");
  EXPECT_EQ(gpu.size.gpu_count, 1);
  EXPECT_EQ(gpu.size.gpu_model, "T4");
  EXPECT_EQ(gpu.size.gpu_memory_mib, 16384);
  EXPECT_EQ(gpu.provision.overrides, nlohmann::json({{"no_gsp", true}}));
  ASSERT_TRUE(gpu.cost.autostop);
  EXPECT_EQ(gpu.cost.autostop->idle_seconds, 1800);
  EXPECT_EQ(gpu.cost.autostop->action, "terminate");
  EXPECT_FALSE(gpu.cost.agent_on_host);
  EXPECT_EQ(gpu.cost.power_off_action, "terminate");

  MachineRecord half = load_fixture(store, "v1-ec2-half1.json", "half1");
  EXPECT_TRUE(half.progress.incomplete);
  EXPECT_EQ(half.size.region, "us-east-1");
  EXPECT_EQ(half.resources.size(), 2u);
}

TEST(RecordMigration, Version1GenericRecordKeepsItsDriverConfig) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord gen = load_fixture(store, "v1-generic-gen1.json", "gen1");
  EXPECT_EQ(gen.driver, "generic");
  EXPECT_EQ(gen.driver_config,
            nlohmann::json({{"host_key_fingerprint", ""}, {"ssh_agent", false}}));
  EXPECT_EQ(gen.size, MachineSize{});
  EXPECT_EQ(gen.facts["host"]["os_id"], "debian");
  EXPECT_EQ(gen.ssh.host, "127.0.1.2");
}

TEST(RecordMigration, AMigratedRecordIsSavedAsTheCurrentVersionAndReadsBackTheSame) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord gpu = load_fixture(store, "v1-ec2-gpu1.json", "gpu1");
  store.save(store.lock("gpu1", "test"), gpu);
  nlohmann::json on_disk = nlohmann::json::parse(util::read_file(store.record_path("gpu1")));
  EXPECT_EQ(on_disk["schema_version"], MachineRecord::k_schema_version);
  EXPECT_EQ(on_disk["size"]["instance_type"], "g4dn.xlarge");
  MachineRecord again = store.load("gpu1");
  EXPECT_EQ(again.size, gpu.size);
  EXPECT_EQ(again.cost, gpu.cost);
  EXPECT_EQ(again.provision, gpu.provision);
  EXPECT_EQ(again.progress, gpu.progress);
  EXPECT_EQ(again.driver_config, gpu.driver_config);
}

// A version 2 record (written by gpumachine before clusters) is one machine in version 3.
TEST(RecordMigration, Version2RecordsLoadAsOneMachine) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord cpu = load_fixture(store, "v2-ec2-cpu1.json", "cpu1");
  EXPECT_EQ(cpu.schema_version, 3);
  EXPECT_FALSE(cpu.cluster.has_value());
  EXPECT_EQ(cpu.size.instance_type, "t3.micro");
  EXPECT_EQ(cpu.last_state, "stopped");
  store.save(store.lock("cpu1", "test"), cpu);
  nlohmann::json on_disk = nlohmann::json::parse(util::read_file(store.record_path("cpu1")));
  EXPECT_EQ(on_disk["schema_version"], 3);
  EXPECT_FALSE(on_disk.contains("cluster"));
}

TEST(RecordMigration, AClusterSectionReadsBackTheSame) {
  TempDir tmp;
  Store store(tmp.home());
  MachineRecord c = load_fixture(store, "v2-ec2-cpu1.json", "cpu1");
  c.cluster = Cluster{.size = 2,
                      .nodes = {{.rank = 0,
                                 .id = "i-0",
                                 .host = "127.0.1.1",
                                 .private_ip = "172.31.0.5",
                                 .host_key = "ssh-ed25519 AAAA0",
                                 .last_state = "running"},
                                {.rank = 1,
                                 .id = "i-1",
                                 .host = "127.0.1.2",
                                 .private_ip = "172.31.0.6",
                                 .host_key = "ssh-ed25519 AAAA1",
                                 .last_state = "stopped"}}};
  store.save(store.lock("cpu1", "test"), c);
  EXPECT_EQ(store.load("cpu1").cluster, c.cluster);
}

TEST(RecordMigration, ANewerRecordIsRefusedAndNeverRewritten) {
  TempDir tmp;
  Store store(tmp.home());
  load_fixture(store, "v1-ec2-cpu1.json", "cpu1");
  nlohmann::json j = nlohmann::json::parse(util::read_file(store.record_path("cpu1")));
  j["schema_version"] = MachineRecord::k_schema_version + 1;
  const std::string text = j.dump(2);
  util::write_file_atomic(store.record_path("cpu1"), text);
  EXPECT_THROW(store.load("cpu1"), Error);
  std::vector<Entry> entries = store.list();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_NE(entries[0].error.find("newer gpumachine"), std::string::npos) << entries[0].error;
  EXPECT_EQ(util::read_file(store.record_path("cpu1")), text);
}

}  // namespace
}  // namespace gm::store
