// The fault matrix: every case asserts the outcome the user sees and that nothing leaked.
#include "drivers/ec2/ec2_test_util.h"

namespace gm::testing::ec2 {
namespace {

/// Creates, checks SSH-less success, removes, and checks nothing is left.
void create_and_remove(Ec2EmulatorFixture& emu, const std::string& name,
                       std::vector<std::string> extra = {"--wait", "running"}) {
  CaptureResult r = emu.gm(create_args(name, std::move(extra)));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.live_instances().size(), 1u);
  r = emu.gm({"rm", name});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Faults, ThrottlingBurstsAreRetried) {
  Ec2EmulatorFixture emu;
  emu.fault(nlohmann::json::array({
      {{"action", "RunInstances"}, {"kind", "throttle"}, {"count", 2}},
      {{"action", "DescribeInstances"}, {"kind", "throttle"}, {"count", 2}},
      {{"action", "ImportKeyPair"}, {"kind", "throttle"}, {"count", 1}},
  }));
  create_and_remove(emu, "thr");
  EXPECT_EQ(emu.count_calls("RunInstances"), 3);
}

TEST(Ec2Faults, ServerErrorsAreRetried) {
  Ec2EmulatorFixture emu;
  emu.fault(nlohmann::json::array({
      {{"action", "CreateSecurityGroup"}, {"kind", "http500"}, {"count", 1}},
      {{"action", "RunInstances"}, {"kind", "http503"}, {"count", 1}},
      {{"action", "DescribeInstances"}, {"kind", "html502"}, {"count", 1}},
      {{"action", "TerminateInstances"}, {"kind", "empty500"}, {"count", 1}},
  }));
  create_and_remove(emu, "five");
}

TEST(Ec2Faults, DroppedConnectionDuringRunInstancesLaunchesOnce) {
  Ec2EmulatorFixture emu;
  emu.fault({{"action", "RunInstances"}, {"kind", "drop_after"}, {"count", 1}});
  CaptureResult r = emu.gm(create_args("drop", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  // The first request launched and lost its answer; the retry with the same ClientToken got
  // the same instance back.
  EXPECT_EQ(emu.count_calls("RunInstances"), 2);
  nlohmann::json all = emu.state()["regions"]["us-east-1"]["instances"];
  EXPECT_EQ(all.size(), 1u) << all.dump(1);
  r = emu.gm({"rm", "drop"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Faults, EventualConsistencyIsWaitedOut) {
  Ec2EmulatorFixture emu(nlohmann::json{{"consistency_delay", 1.5}});
  create_and_remove(emu, "ec", {});
}

TEST(Ec2Faults, CapacityInTwoOfThreeZonesLandsInTheThird) {
  Ec2EmulatorFixture emu(
      nlohmann::json{{"capacity",
                      {{"us-east-2a", {{"t3.micro", "InsufficientInstanceCapacity"}}},
                       {"us-east-2b", {{"t3.micro", "Unsupported"}}}}}});
  CaptureResult r = emu.gm(create_args("cap", {"--ec2-region", "us-east-2", "--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  std::vector<nlohmann::json> live = emu.live_instances("us-east-2");
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0]["availabilityZone"], "us-east-2c");
  EXPECT_NE(r.err.find("us-east-2a: InsufficientInstanceCapacity"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("us-east-2b: Unsupported"), std::string::npos) << r.err;
  r = emu.gm({"rm", "cap"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks("us-east-2").empty()) << lines(emu.leaks("us-east-2"));
}

TEST(Ec2Faults, CapacityInEveryZoneFailsListingThemAndLeavesNothing) {
  Ec2EmulatorFixture emu(nlohmann::json{
      {"capacity", {{"us-east-2", {{"t3.micro", "InsufficientInstanceCapacity"}}}}}});
  CaptureResult r = emu.gm(create_args("nocap", {"--ec2-region", "us-east-2"}));
  EXPECT_EQ(r.status, 1) << describe(r);
  for (const char* zone : {"us-east-2a", "us-east-2b", "us-east-2c"}) {
    EXPECT_NE(r.err.find(std::string(zone) + ": InsufficientInstanceCapacity"), std::string::npos)
        << r.err;
  }
  EXPECT_TRUE(emu.leaks("us-east-2").empty()) << lines(emu.leaks("us-east-2"));
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/nocap"));
}

TEST(Ec2Faults, DependencyViolationOnRmIsRetried) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("dep", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  emu.fault({{"action", "DeleteSecurityGroup"},
             {"kind", "DependencyViolation"},
             {"count", 2},
             {"status", 400}});
  r = emu.gm({"rm", "dep"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.count_calls("DeleteSecurityGroup"), 3);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Faults, WrongCredentialsFailClearlyAndCreateNothing) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("cred"), {{"AWS_SECRET_ACCESS_KEY", "not-the-secret"}});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("SignatureDoesNotMatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("not-the-secret"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/cred"));

  r = emu.gm(create_args("cred"), {{"AWS_ACCESS_KEY_ID", "AKIDUNKNOWN"}});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("AuthFailure"), std::string::npos) << r.err;
}

TEST(Ec2Faults, ExpiredTemporaryCredentialsFailClearly) {
  Ec2EmulatorFixture emu(nlohmann::json{
      {"credentials", nlohmann::json::array({{{"access_key_id", k_emulator_key_id},
                                              {"secret_access_key", k_emulator_secret}},
                                             {{"access_key_id", "ASIAEXPIREDEXAMPLE"},
                                              {"secret_access_key", "expired-secret"},
                                              {"session_token", "expired-token"},
                                              {"expires", 1000000}}})}});
  CaptureResult r = emu.gm(create_args("old"), {{"AWS_ACCESS_KEY_ID", "ASIAEXPIREDEXAMPLE"},
                                                {"AWS_SECRET_ACCESS_KEY", "expired-secret"},
                                                {"AWS_SESSION_TOKEN", "expired-token"}});
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("RequestExpired"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("expired-token"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Faults, SkewedClockFailsWithAClockHint) {
  // The emulator judges skew against its own clock: a negative tolerance makes every request
  // look skewed, as a wrong local clock would.
  Ec2EmulatorFixture emu(nlohmann::json{{"max_clock_skew_s", -1}});
  CaptureResult r = emu.gm(create_args("skew"));
  EXPECT_EQ(r.status, 1) << describe(r);
  EXPECT_NE(r.err.find("RequestExpired"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("clock"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

TEST(Ec2Faults, WrongImageOrTypeFailsBeforeCreatingAnything) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("img", {"--ec2-image", "ami-0123456789abcdef0"}));
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("no such image in us-east-1"), std::string::npos) << r.err;
  r = emu.gm(create_args("typ", {"--ec2-instance-type", "zz9.huge"}));
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("not an instance type in us-east-1"), std::string::npos) << r.err;
  // An arm64 type with an x86_64 image.
  r = emu.gm(
      create_args("arch", {"--ec2-instance-type", "c7g.large", "--ec2-image", "ubuntu-24.04"}));
  EXPECT_EQ(r.status, 0) << describe(r);  // aliases resolve per architecture
  r = emu.gm({"rm", "arch"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.count_calls("ImportKeyPair"), 1);
  EXPECT_EQ(emu.count_calls("CreateSecurityGroup"), 1);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/img"));
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/typ"));
}

TEST(Ec2Faults, ASshCidrWithHostBitsNamesBothReadings) {
  Ec2EmulatorFixture emu;
  CaptureResult r =
      emu.gm({"create", "--driver", "ec2", "cidr", "--ec2-ssh-cidr", "203.0.113.5/24"});
  EXPECT_EQ(r.status, 2) << describe(r);
  EXPECT_NE(r.err.find("--ec2-ssh-cidr '203.0.113.5/24': has bits set after the prefix"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("203.0.113.0/24"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("203.0.113.5/32"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.calls()["calls"].empty());
}

TEST(Ec2Faults, BadFlagsAreAllReportedBeforeAnyCall) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm({"create", "--driver", "ec2", "bad", "--ec2-image", "debian",
                            "--ec2-root-size", "huge", "--ec2-volume-type", "gp9", "--ec2-ssh-cidr",
                            "1.2.3.4", "--ec2-tag", "novalue", "--ec2-zone", "eu-west-1a"});
  EXPECT_EQ(r.status, 2) << describe(r);
  for (const char* flag :
       {"--ec2-image 'debian'", "--ec2-root-size 'huge'", "--ec2-volume-type 'gp9'",
        "--ec2-ssh-cidr '1.2.3.4'", "--ec2-tag 'novalue'", "--ec2-zone 'eu-west-1a'"}) {
    EXPECT_NE(r.err.find(flag), std::string::npos) << flag << "\n" << r.err;
  }
  EXPECT_NE(r.err.find("ubuntu-24.04"), std::string::npos) << r.err;  // accepted values shown
  nlohmann::json calls = emu.calls();
  EXPECT_TRUE(calls["calls"].empty()) << calls.dump();
  r = emu.gm({"create", "--driver", "ec2", "nowait", "--wait", "forever"});
  EXPECT_EQ(r.status, 2) << describe(r);
}

TEST(Ec2Faults, ProfileCredentialsFromTempHome) {
  Ec2EmulatorFixture emu;
  std::filesystem::path aws = emu.dir() / "home/.aws";
  std::filesystem::create_directories(aws);
  write_text(aws / "credentials", std::string("[dev]\naws_access_key_id = ") + k_emulator_key_id +
                                      "\naws_secret_access_key = " + k_emulator_secret + "\n");
  write_text(aws / "config", "[profile dev]\nregion = us-west-2\n");
  std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", ""},
      {"AWS_SECRET_ACCESS_KEY", ""},
      {"AWS_REGION", ""},
      {"AWS_DEFAULT_REGION", ""},
      {"AWS_PROFILE", "dev"},
      {"AWS_SHARED_CREDENTIALS_FILE", (aws / "credentials").string()},
      {"AWS_CONFIG_FILE", (aws / "config").string()}};
  CaptureResult r = emu.gm(create_args("prof", {"--wait", "running"}), env);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(emu.live_instances("us-west-2").size(), 1u);  // region from the profile
  r = emu.gm({"rm", "prof"}, env);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(emu.leaks("us-west-2").empty()) << lines(emu.leaks("us-west-2"));

  // No credentials anywhere: a clear error that names where it looked; nothing created.
  env["AWS_PROFILE"] = "";
  env["AWS_SHARED_CREDENTIALS_FILE"] = (aws / "missing").string();
  r = emu.gm(create_args("nocred", {"--ec2-region", "us-west-2"}), env);
  EXPECT_NE(r.status, 0) << describe(r);
  EXPECT_NE(r.err.find("AWS_ACCESS_KEY_ID"), std::string::npos) << r.err;
  EXPECT_TRUE(emu.leaks("us-west-2").empty()) << lines(emu.leaks("us-west-2"));
  EXPECT_FALSE(std::filesystem::exists(emu.home() / "machines/nocred"));
}

}  // namespace
}  // namespace gm::testing::ec2
