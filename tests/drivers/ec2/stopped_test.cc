// A machine stopped behind gpumachine's back (its autostop agent powered it off): SSH verbs ask
// EC2 first, say `gpumachine start` (never "create", which would steer towards rm), and pick up
// the new public address once it runs again.
#include "drivers/ec2/ec2_test_util.h"

#include "http/curl_transport.h"

#include <thread>

namespace gm::testing::ec2 {
namespace {

std::string wait_for_state(Ec2EmulatorFixture& emu, const std::string& id,
                           const std::string& want) {
  nlohmann::json inst;
  for (int i = 0; i < 600; ++i) {
    inst = emu.state()["regions"]["us-east-1"]["instances"][id];
    if (inst["state"] == want && (want != "running" || !inst["sshd_pid"].is_null())) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(inst["state"], want);
  return inst["publicIp"].is_string() ? inst["publicIp"].get<std::string>() : "";
}

/// The guest powers itself off, as the autostop agent does (the emulator's control API).
void poweroff(Ec2EmulatorFixture& emu, const std::string& id) {
  http::CurlTransport transport;
  http::Request request;
  request.method = "POST";
  request.url = emu.endpoint() + "/_emulator/poweroff?instance=" + id;
  request.timeout = std::chrono::seconds(20);
  ASSERT_EQ(transport.send(request).status, 200);
}

nlohmann::json record_of(Ec2EmulatorFixture& emu, const std::string& name) {
  return nlohmann::json::parse(read_text(emu.home() / "machines" / name / "machine.json"));
}

TEST(Ec2Stopped, SshVerbsSayStartAndFollowANewAddress) {
  Ec2EmulatorFixture emu;
  CaptureResult r = emu.gm(create_args("nap", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::string id = record_of(emu, "nap")["driver_config"]["instance_id"];
  const std::string first_ip = record_of(emu, "nap")["ssh"]["host"];

  poweroff(emu, id);
  wait_for_state(emu, id, "stopped");
  for (const std::vector<std::string>& verb :
       {std::vector<std::string>{"ssh", "nap", "--", "true"},
        std::vector<std::string>{"forward", "nap", "0:127.0.0.1:9"},
        std::vector<std::string>{"probe", "nap"}, std::vector<std::string>{"provision", "nap"},
        std::vector<std::string>{"autostop", "nap", "30m"}}) {
    r = emu.gm(verb);
    EXPECT_NE(r.status, 0) << describe(r);
    EXPECT_NE(r.err.find("gpumachine start nap"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("gpumachine create"), std::string::npos) << describe(r);
  }

  // Started elsewhere (the console, the AWS CLI): a new public address.
  std::map<std::string, std::string> env = emu.cli_env();
  env.erase("AWS_PROFILE");  // the AWS CLI refuses an empty one
  env.erase("AWS_SESSION_TOKEN");
  CaptureResult started = run_capture({"/usr/bin/aws", "--endpoint-url", emu.endpoint(), "ec2",
                                       "start-instances", "--instance-ids", id},
                                      {}, SpawnOptions{.env = env});
  ASSERT_EQ(started.status, 0) << started.err;
  std::string new_ip = wait_for_state(emu, id, "running");
  ASSERT_NE(new_ip, first_ip);
  r = emu.gm({"ssh", "nap", "--", "echo", "awake"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("awake"), std::string::npos) << describe(r);
  EXPECT_EQ(record_of(emu, "nap")["ssh"]["host"], new_ip);
  EXPECT_NE(read_text(emu.home() / "ssh_config").find(new_ip), std::string::npos);

  ASSERT_EQ(emu.gm({"rm", "nap"}).status, 0);
  EXPECT_TRUE(emu.leaks().empty()) << lines(emu.leaks());
}

}  // namespace
}  // namespace gm::testing::ec2
