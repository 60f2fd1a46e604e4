// Records through the real binary: a bad record is a row with its error and `rm --force` removes
// it; `status` never saves over a command that holds the machine's lock nor brings back a
// machine `rm` removed; `ls` says why a state is "error".
#include "cli/cli_runner.h"
#include "machine/connect.h"
#include "store/store.h"
#include "support/sshd.h"
#include "util/fs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace gm::testing {
namespace {

using ::testing::HasSubstr;

void write_record(const CliRunner& cli, const std::string& dir_name, const std::string& json) {
  std::filesystem::create_directories(cli.home() / "machines" / dir_name);
  write_text(cli.home() / "machines" / dir_name / "machine.json", json);
}

/// AWS settings that reach nothing but a closed loopback port.
void offline_aws(CliRunner& cli) {
  std::string endpoint = "http://127.0.0.1:" + std::to_string(free_port());
  for (const char* var : {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SSM",
                          "AWS_ENDPOINT_URL_STS"}) {
    cli.env()[var] = endpoint;
  }
  cli.env()["AWS_ACCESS_KEY_ID"] = "AKIDEXAMPLE";
  cli.env()["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  cli.env()["AWS_REGION"] = "us-east-1";
  cli.env()["AWS_EC2_METADATA_DISABLED"] = "true";
  cli.env()["AWS_MAX_ATTEMPTS"] = "1";
  cli.env()["AWS_SHARED_CREDENTIALS_FILE"] = (cli.dir() / "no-credentials").string();
  cli.env()["AWS_CONFIG_FILE"] = (cli.dir() / "no-config").string();
}

TEST(BadRecords, WrongTypesAndNamesAreRowsAndRmForceRemovesThem) {
  CliRunner cli;
  offline_aws(cli);
  // Valid JSON objects, but fields the listing and the driver read have the wrong types.
  write_record(cli, "typo",
               R"({"schema_version": 1, "name": "typo", "driver": "generic",
                   "driver_config": {"region": 5}, "ssh": {"host": "127.0.0.1", "port": 9}})");
  write_record(cli, "num",
               R"({"schema_version": 1, "name": "num", "driver": "ec2",
                   "driver_config": {"region": 5, "instance_id": 7}})");
  std::filesystem::create_directories(cli.home() / "machines" / "bad\xff");  // not UTF-8

  for (const std::vector<std::string>& ls :
       {std::vector<std::string>{"ls", "--cached"}, std::vector<std::string>{"ls"}}) {
    CaptureResult table = cli.run(ls);
    EXPECT_EQ(table.status, 0) << table.err;
    EXPECT_THAT(table.out, HasSubstr("typo: corrupt record"));
    EXPECT_THAT(table.out, HasSubstr("num: corrupt record"));
    std::vector<std::string> json_args = {"--format", "json"};
    json_args.insert(json_args.end(), ls.begin(), ls.end());
    CaptureResult json = cli.run(json_args);
    ASSERT_EQ(json.status, 0) << json.err;
    nlohmann::json rows = nlohmann::json::parse(json.out);
    ASSERT_EQ(rows.size(), 3u) << json.out;
    for (const nlohmann::json& row : rows) {
      EXPECT_EQ(row["state"], "error") << row;
      EXPECT_FALSE(row["error"].get<std::string>().empty()) << row;
    }
  }

  CaptureResult rm = cli.run({"rm", "--force", "typo", "num"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_FALSE(std::filesystem::exists(cli.home() / "machines" / "typo"));
  EXPECT_FALSE(std::filesystem::exists(cli.home() / "machines" / "num"));
}

TEST(LsErrors, TheTableSaysWhyAStateIsError) {
  CliRunner cli;
  offline_aws(cli);
  write_record(cli, "far",
               R"({"schema_version": 1, "name": "far", "driver": "ec2",
                   "driver_config": {"region": "us-east-1", "instance_type": "t3.micro",
                                     "instance_id": "i-0123456789abcdef0"}})");
  CaptureResult r = cli.run({"ls", "--timeout", "60"});
  EXPECT_EQ(r.status, 0) << r.err;
  nlohmann::json rows = cli.json({"ls", "--timeout", "60"});
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0]["state"], "error") << rows;
  EXPECT_THAT(rows[0]["error"].get<std::string>(), HasSubstr("us-east-1: "));
  EXPECT_THAT(r.out, HasSubstr("far: us-east-1: "));  // under the table: why
}

TEST(StatusLock, NeverSavesOverALockHolderNorBringsBackARemovedMachine) {
  SshdFixture sshd;
  CliRunner cli;
  CaptureResult made = cli.run(cli.generic_create_args("box", sshd.host(), sshd.port(), sshd.user(),
                                                       sshd.client_key_path().string()));
  ASSERT_EQ(made.status, 0) << made.err;
  std::filesystem::path record = cli.home() / "machines" / "box" / "machine.json";
  sshd.stop();
  const std::string before = read_text(record);
  store::Store store(cli.home());
  {
    // As a create, provision or rm in progress holds it.
    store::MachineLock held = store.lock("box", "test");
    CaptureResult r = cli.run({"status", "box"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "unreachable\n");
    EXPECT_EQ(read_text(record), before);
  }
  EXPECT_EQ(cli.run({"status", "box"}).status, 0);
  EXPECT_EQ(nlohmann::json::parse(read_text(record))["last_state"], "unreachable");

  // `rm` between status's read and its save: the machine stays removed.
  MachineRecord read = store.load("box");
  read.last_state = "running";
  store.remove(store.lock("box", "rm"), "box");
  EXPECT_EQ(machine::refresh_state(store, read, "status"), MachineState::unreachable);
  EXPECT_FALSE(store.exists("box"));
  EXPECT_EQ(util::read_file(store.ssh_config_path()).find("Host box"), std::string::npos);
}

}  // namespace
}  // namespace gm::testing
