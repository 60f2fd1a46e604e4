// End to end on the EC2 emulator, without the EC2 driver: an emulated instance launched through the
// real signed API, the real agent installed over a real SSH session by apply_on_host(), and a
// simulated systemd timer (a stub systemctl that runs the unit's ExecStart every second). Idle ->
// the agent's `systemctl poweroff` reaches the emulator (guest_bin stubs) -> the instance is
// stopped per its InstanceInitiatedShutdownBehavior. An open SSH tunnel (what `gpumachine forward`
// holds) keeps it up; `autostop off` disarms it.
#include "aws/client.h"
#include "cost/autostop.h"
#include "ssh/session.h"
#include "support/ec2_emulator.h"
#include "support/process.h"
#include "util/crypto.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <thread>

namespace gm::cost {
namespace {

using gm::testing::Process;
using gm::testing::read_text;
using gm::testing::run_capture;
using gm::testing::TempDir;
using gm::testing::write_text;
using namespace std::chrono_literals;

// A simulated systemd for the agent's units: `enable --now X.timer` starts a loop running the
// matching service's ExecStart (with its Environment=) every SIMTIMER_INTERVAL seconds; the loop
// carries the session's EC2EMU_MARK, so the emulator ends it with the instance.
constexpr const char* k_systemctl_stub = R"SH(#!/usr/bin/env bash
set -euo pipefail
dir=${SIMTIMER_UNIT_DIR:?}
case "${1:-}" in
  daemon-reload) ;;
  enable)
    unit=${3%.timer}.service
    env_line=$(sed -n 's/^Environment=//p' "$dir/$unit")
    exec_line=$(sed -n 's/^ExecStart=//p' "$dir/$unit")
    setsid bash -c "while :; do env $env_line $exec_line || true; sleep ${SIMTIMER_INTERVAL:-1}; done" \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/timer.pid" ;;
  disable)
    if [ -f "$dir/timer.pid" ]; then kill "$(cat "$dir/timer.pid")" 2>/dev/null || true; rm -f "$dir/timer.pid"; fi ;;
  *) echo "simulated systemctl: $*" >&2 ;;
esac
)SH";

class AutostopEmulator : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root: emulated instances' sshds listen on 127.x:22";
    }
    if (!std::filesystem::exists("/usr/sbin/sshd")) {
      GTEST_SKIP() << "openssh-server is not installed";
    }
    std::filesystem::create_directories(m_dir / "stubs");
    std::filesystem::create_directories(m_dir / "root/etc/systemd/system");
    write_text(m_dir / "stubs/systemctl", k_systemctl_stub, 0755);
    // Its own 127.N.0.0/16 (the fixture reserves one): parallel tests' tunnels and sshds on a
    // shared address would count as this instance's activity.
    m_emulator = std::make_unique<gm::testing::Ec2EmulatorFixture>(nlohmann::json{
        {"delays", {{"pending", 0.2}, {"stopping", 0.3}, {"shutting_down", 0.3}}},
        {"instance_env",
         {{"PATH", (m_dir / "stubs").string() + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                                                "/usr/bin:/sbin:/bin"},
          {"GM_SYSROOT", (m_dir / "root").string()},
          {"SIMTIMER_UNIT_DIR", (m_dir / "root/etc/systemd/system").string()},
          {"SIMTIMER_INTERVAL", "1"},
          // The test machine's own logins and processes are not the instance's.
          {"AUTOSTOP_WHO_CMD", "true"},
          {"AUTOSTOP_NVIDIA_SMI", "false"}}}});
    m_client = std::make_unique<aws::AwsClient>(aws::ClientOptions{
        .region = "us-east-1",
        .credentials =
            [] {
              return aws::Credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
            },
        .endpoint = [this](std::string_view) { return m_emulator->endpoint(); }});
    ASSERT_EQ(run_capture({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                           (m_dir / "client").string()})
                  .status,
              0);
    std::string pub = read_text(m_dir / "client.pub");
    m_client->call(
        "ec2", "ImportKeyPair",
        aws::QueryParams().set("KeyName", "k").set("PublicKeyMaterial", util::base64_encode(pub)));
    nlohmann::json ami = m_client->call_json(
        "ssm", "AmazonSSM.GetParameter",
        {{"Name",
          "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"}});
    m_ami = ami["Parameter"]["Value"];
  }

  nlohmann::json instance(const std::string& iid) {
    return m_emulator->state()["regions"]["us-east-1"]["instances"][iid];
  }

  nlohmann::json wait_state(const std::string& iid, const std::string& want,
                            std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    nlohmann::json inst;
    while (std::chrono::steady_clock::now() < deadline) {
      inst = instance(iid);
      if (inst["state"] == want && (want != "running" || !inst["sshd_pid"].is_null())) {
        return inst;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << iid << " is " << inst["state"] << ", not " << want << " after "
                  << timeout.count() << "s";
    return inst;
  }

  std::string launch(const std::string& behaviour) {
    aws::QueryResult r = m_client->call("ec2", "RunInstances",
                                        aws::QueryParams()
                                            .set("ImageId", m_ami)
                                            .set("InstanceType", "t3.micro")
                                            .set("MinCount", 1)
                                            .set("MaxCount", 1)
                                            .set("KeyName", "k")
                                            .set("InstanceInitiatedShutdownBehavior", behaviour));
    return r.root().select_node("//instanceId").node().text().get();
  }

  AgentPaths paths(const std::string& ip) {
    AgentPaths p;  // the host's own paths, under the instance's root (GM_SYSROOT)
    // Only this instance's sshd address counts (other tests' sshds share this machine), and the
    // test machine's own python processes are not the instance's workload.
    p.extra_config = "SSH_LOCAL_ADDRESSES=" + ip + "\nPROCESSES=\nBUSY_PROCESSES=\n";
    return p;
  }

  /// Installs (nullopt: disarms) each of \a steps in turn over one real SSH session, then closes
  /// it (an open session is activity, so no check between the steps can power off).
  void apply(const nlohmann::json& inst,
             std::initializer_list<std::optional<AutostopSettings>> steps) {
    ssh::ConnectOptions options;
    options.target.host = inst["publicIp"];
    options.target.port = 22;
    options.target.user = "root";
    options.target.key_path = (m_dir / "client").string();
    options.host_key_policy = ssh::HostKeyPolicy::trust_on_first_use;
    options.retry_for = 10s;
    std::unique_ptr<ssh::Session> session = ssh::Session::connect(options);
    for (const std::optional<AutostopSettings>& settings : steps) {
      apply_on_host(*session, settings, "emulated instance", paths(inst["publicIp"]));
    }
  }

  std::string agent_log() { return read_text(m_dir / "root/var/log/gpumachine/autostop.log"); }

  TempDir m_dir{"gm-autostop-emu"};
  // Stopped by its destructor, which ends every sshd and session the emulator started.
  std::unique_ptr<gm::testing::Ec2EmulatorFixture> m_emulator;
  std::unique_ptr<aws::AwsClient> m_client;
  std::string m_ami;
};

TEST_F(AutostopEmulator, IdleStopsTheInstanceAndAnOpenTunnelKeepsItUp) {
  std::string iid = launch("stop");
  nlohmann::json inst = wait_state(iid, "running", 15s);
  std::string ip = inst["publicIp"];

  // An `ssh -N -L` tunnel, the connection `gpumachine forward` holds open: no shell, no pty.
  // Up before the agent is armed: on a loaded machine a tunnel started after it could take
  // longer than the 3 s window to log in.
  const int local = gm::testing::free_port();
  Process tunnel({"ssh", "-N", "-F", "/dev/null", "-i", (m_dir / "client").string(), "-o",
                  "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
                  "BatchMode=yes", "-L", "127.0.0.1:" + std::to_string(local) + ":127.0.0.1:9",
                  "root@" + ip});
  // ssh listens on the local port only once it has logged in.
  for (int i = 0; i < 300 && !gm::testing::port_accepts("127.0.0.1", local); ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(gm::testing::port_accepts("127.0.0.1", local));
  AutostopSettings settings{3s, AutostopAction::stop, 0s};
  apply(inst, {settings});
  std::this_thread::sleep_for(8s);  // well past the 3 s window, several checks
  EXPECT_EQ(instance(iid)["state"], "running") << agent_log();
  EXPECT_NE(agent_log().find("active: ssh: 1 established connection(s) to sshd"), std::string::npos)
      << agent_log();

  tunnel.stop();
  inst = wait_state(iid, "stopped", 20s);
  EXPECT_EQ(inst["stateReason"]["code"], "Client.InstanceInitiatedShutdown");
  EXPECT_NE(agent_log().find("poweroff: idle"), std::string::npos) << agent_log();
}

TEST_F(AutostopEmulator, TerminateBehaviourEndsTerminated) {
  std::string iid = launch("terminate");
  nlohmann::json inst = wait_state(iid, "running", 15s);
  apply(inst, {AutostopSettings{2s, AutostopAction::terminate, 0s}});
  wait_state(iid, "terminated", 20s);
}

TEST_F(AutostopEmulator, OffDisarmsIt) {
  std::string iid = launch("stop");
  nlohmann::json inst = wait_state(iid, "running", 15s);
  apply(inst, {AutostopSettings{3s, AutostopAction::stop, 0s}, std::nullopt});
  std::this_thread::sleep_for(6s);
  EXPECT_EQ(instance(iid)["state"], "running") << agent_log();
  EXPECT_EQ(agent_log().find("poweroff:"), std::string::npos) << agent_log();
}

}  // namespace
}  // namespace gm::cost
