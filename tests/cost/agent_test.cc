// The autostop agent's decisions against recorded inputs: each activity signal both ways, the
// lifetime cap, the state across a simulated reboot and a stop/start, the log, the --status JSON,
// and the installation script run against a scratch root with a recording systemctl.
#include "cost/autostop.h"
#include "support/process.h"
#include "util/assets.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace gm::cost {
namespace {

using gm::testing::read_text;
using gm::testing::run_capture;
using gm::testing::SpawnOptions;
using gm::testing::TempDir;
using gm::testing::write_text;

// /proc/net/tcp as the kernel writes it: 0100007F = 127.0.0.1, 0016 = port 22, st 01 = established,
// 0A = listen.
constexpr const char* k_tcp_header =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n";
constexpr const char* k_tcp_listen_only =
    "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "1001 1 0000000000000000 100 0 0 10 0\n";
constexpr const char* k_tcp_ssh_established =
    "   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 02:0009A2C2 00000000     0        0 "
    "1002 4 0000000000000000 20 4 30 10 -1\n";
// An established connection to a local Jupyter (8888 = 0x22B8): not sshd, not activity.
constexpr const char* k_tcp_jupyter_established =
    "   2: 0100007F:22B8 0100007F:E012 01 00000000:00000000 00:00000000 00000000     0        0 "
    "1003 1 0000000000000000 20 4 30 10 -1\n";
// tcp6: an IPv4-mapped ::ffff:10.0.0.5 on port 22, established.
constexpr const char* k_tcp6_ssh_established =
    "   0: 0000000000000000FFFF00000500000A:0016 0000000000000000FFFF0000C0A8010A:C350 01 "
    "00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1\n";

/// One simulated host for the agent: its config, state, log and every input file.
class AgentHost {
 public:
  AgentHost() {
    write_text(m_dir / "agent.sh", std::string(agent_script()), 0755);
    set_tcp(k_tcp_listen_only);
    write_text(m_dir / "tcp6", k_tcp_header);
    set_gpu("0\n0\n");
    set_ps(
        "    1 00:00:03 /sbin/init\n  812 00:00:00 /usr/bin/python3 "
        "/usr/bin/networkd-dispatcher\n");
    set_who("");
    set_docker("");
    set_boot("boot-a", 100);
    config("IDLE_SECONDS=600\nMAX_LIFETIME_SECONDS=0\n");
  }

  void config(const std::string& extra) {
    write_text(m_dir / "autostop.conf", "# test\nENABLED=1\nSTATE_FILE=" + path("state") +
                                            "\nLOG_FILE=" + path("log/autostop.log") +
                                            "\nPOWEROFF_CMD=touch " + path("powered-off") + "\n" +
                                            extra);
  }
  void set_tcp(const std::string& rows) { write_text(m_dir / "tcp", k_tcp_header + rows); }
  void set_tcp6(const std::string& rows) { write_text(m_dir / "tcp6", k_tcp_header + rows); }
  void set_gpu(const std::string& out, int status = 0) {
    write_text(m_dir / "nvidia-smi",
               "#!/bin/sh\ncat <<'EOF'\n" + out + "EOF\nexit " + std::to_string(status) + "\n",
               0755);
  }
  void set_ps(const std::string& out) { write_text(m_dir / "ps.txt", out); }
  void set_who(const std::string& out) { write_text(m_dir / "who.txt", out); }
  /// A docker client that answers the agent's running-jobs query with these container ids (and
  /// anything else with nothing, as docker does for a filter nothing matches).
  void set_docker(const std::string& running_job_ids) {
    write_text(m_dir / "docker",
               "#!/bin/sh\n[ \"$*\" = \"ps -q --filter label=gpumachine.job --filter "
               "status=running\" ] || exit 0\ncat <<'EOF'\n" +
                   running_job_ids + "EOF\n",
               0755);
  }
  void set_boot(const std::string& boot_id, long uptime_seconds) {
    write_text(m_dir / "boot_id", boot_id + "\n");
    write_text(m_dir / "uptime", std::to_string(uptime_seconds) + ".42 1234.00\n");
  }

  /// Runs the agent with \a arg at epoch second \a now; returns its exit status.
  gm::testing::CaptureResult run(const std::string& arg, long now) {
    SpawnOptions options;
    options.env = {{"AUTOSTOP_CONFIG", path("autostop.conf")},
                   {"AUTOSTOP_NOW", std::to_string(now)},
                   {"AUTOSTOP_PROC_NET_TCP", path("tcp")},
                   {"AUTOSTOP_PROC_NET_TCP6", path("tcp6")},
                   {"AUTOSTOP_NVIDIA_SMI", path("nvidia-smi")},
                   {"AUTOSTOP_PS_CMD", "cat " + path("ps.txt")},
                   {"AUTOSTOP_WHO_CMD", "cat " + path("who.txt")},
                   {"AUTOSTOP_DOCKER", path("docker")},
                   {"AUTOSTOP_UPTIME_FILE", path("uptime")},
                   {"AUTOSTOP_BOOT_ID_FILE", path("boot_id")},
                   {"AUTOSTOP_SYSTEMD_DIR", path("systemd")},
                   {"AUTOSTOP_SYSTEMCTL", path("systemctl")}};
    return run_capture({"bash", path("agent.sh"), arg}, {}, options);
  }
  /// One --check; true when it powered off (and resets that marker).
  bool check(long now) {
    gm::testing::CaptureResult r = run("--check", now);
    EXPECT_EQ(r.status, 0) << r.err;
    bool fired = std::filesystem::exists(m_dir / "powered-off");
    std::filesystem::remove(m_dir / "powered-off");
    return fired;
  }
  nlohmann::json status(long now) {
    gm::testing::CaptureResult r = run("--status", now);
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
  std::string log() const { return read_text(m_dir / "log/autostop.log"); }
  std::string last_log_line() const {
    std::string text = log();
    text.pop_back();
    return text.substr(text.rfind('\n') + 1);
  }
  std::string path(const std::string& name) const { return (m_dir / name).string(); }

 private:
  TempDir m_dir{"gm-autostop"};
};

constexpr long k_t0 = 1'750'000'000;

TEST(AutostopAgent, IdleHostPowersOffAfterTheDurationAndSaysWhy) {
  AgentHost host;
  EXPECT_EQ(host.run("--arm", k_t0).status, 0);
  EXPECT_FALSE(host.check(k_t0 + 60));
  EXPECT_NE(host.last_log_line().find("idle 1m00s of 10m00s"), std::string::npos) << host.log();
  EXPECT_FALSE(host.check(k_t0 + 599));
  EXPECT_TRUE(host.check(k_t0 + 600));
  std::string line = host.last_log_line();
  EXPECT_NE(line.find("poweroff: idle 10m00s >= 10m00s"), std::string::npos) << line;
  EXPECT_NE(line.find("no ssh connections, gpu max 0% < 10%"), std::string::npos) << line;
}

TEST(AutostopAgent, SshConnectionCountsOnlyWhenEstablishedToSshd) {
  AgentHost host;
  host.run("--arm", k_t0);
  // A listening sshd and an established Jupyter connection are not activity.
  host.set_tcp(std::string(k_tcp_listen_only) + k_tcp_jupyter_established);
  EXPECT_TRUE(host.check(k_t0 + 600));
  // An established connection to :22 (a shell, a tunnel, VS Code) is.
  host.set_tcp(std::string(k_tcp_listen_only) + k_tcp_ssh_established);
  EXPECT_FALSE(host.check(k_t0 + 1200));
  EXPECT_NE(host.last_log_line().find("active: ssh: 1 established connection(s) to sshd"),
            std::string::npos)
      << host.log();
  // It keeps the host up as long as it stays; the idle clock starts when it goes.
  EXPECT_FALSE(host.check(k_t0 + 5000));
  host.set_tcp(k_tcp_listen_only);
  EXPECT_FALSE(host.check(k_t0 + 5000 + 599));
  EXPECT_TRUE(host.check(k_t0 + 5000 + 600));
}

TEST(AutostopAgent, Ipv6TableAndLocalAddressFilter) {
  AgentHost host;
  host.run("--arm", k_t0);
  host.set_tcp6(k_tcp6_ssh_established);
  EXPECT_FALSE(host.check(k_t0 + 600));
  // Restricted to another local address, that connection no longer counts.
  host.config("IDLE_SECONDS=600\nSSH_LOCAL_ADDRESSES=127.0.0.1\n");
  EXPECT_TRUE(host.check(k_t0 + 1200));
  host.config("IDLE_SECONDS=600\nSSH_LOCAL_ADDRESSES=10.0.0.5\n");
  EXPECT_FALSE(host.check(k_t0 + 1800));
}

TEST(AutostopAgent, GpuUtilizationAboveTheThresholdIsActivity) {
  AgentHost host;
  host.run("--arm", k_t0);
  host.set_gpu("0\n45\n");  // any GPU of several
  EXPECT_FALSE(host.check(k_t0 + 600));
  EXPECT_NE(host.last_log_line().find("gpu: utilization 45% >= 10%"), std::string::npos);
  host.set_gpu("9\n3\n");  // below the threshold
  EXPECT_FALSE(host.check(k_t0 + 1199));
  EXPECT_TRUE(host.check(k_t0 + 1200));
  EXPECT_NE(host.last_log_line().find("gpu max 9% < 10%"), std::string::npos) << host.log();
  // A broken nvidia-smi is not activity, and the log says so.
  host.run("--arm", k_t0 + 2000);
  host.set_gpu("NVIDIA-SMI has failed because it couldn't communicate with the driver.\n", 9);
  EXPECT_TRUE(host.check(k_t0 + 2600));
  EXPECT_NE(host.last_log_line().find("nvidia-smi failed"), std::string::npos);
}

TEST(AutostopAgent, NamedProcessesAndBusyKernels) {
  AgentHost host;
  host.run("--arm", k_t0);
  // Presence list: torchrun keeps the host up whatever its CPU use.
  host.set_ps(
      "  900 00:00:00 /usr/bin/python3 -m torch.distributed.run torchrun --nproc 8 train.py\n");
  EXPECT_FALSE(host.check(k_t0 + 600));
  EXPECT_NE(host.last_log_line().find("process: "), std::string::npos) << host.log();
  // Busy list: a Jupyter kernel counts only while it uses CPU between two checks.
  host.set_ps("  950 00:01:10 /usr/bin/python3 -m ipykernel_launcher -f kernel-1.json\n");
  EXPECT_FALSE(host.check(k_t0 + 660));  // first sighting: a baseline only
  EXPECT_NE(host.last_log_line().find("check: idle 1m00s"), std::string::npos) << host.log();
  host.set_ps("  950 00:01:11 /usr/bin/python3 -m ipykernel_launcher -f kernel-1.json\n");
  EXPECT_FALSE(host.check(k_t0 + 720));  // 1 s since the last check: idle (limit 2 s)
  EXPECT_NE(host.last_log_line().find("check: idle 2m00s"), std::string::npos) << host.log();
  host.set_ps("  950 00:01:20 /usr/bin/python3 -m ipykernel_launcher -f kernel-1.json\n");
  EXPECT_FALSE(host.check(k_t0 + 780));  // 9 s: running cells
  EXPECT_NE(host.last_log_line().find("used 9s CPU"), std::string::npos) << host.log();
  EXPECT_FALSE(host.check(k_t0 + 780 + 599));
  EXPECT_TRUE(host.check(k_t0 + 780 + 600));
  // An idle system python (networkd-dispatcher) never counted.
  host.set_ps("  812 1-02:00:00 /usr/bin/python3 /usr/bin/networkd-dispatcher\n");
  host.run("--arm", k_t0 + 3000);
  host.check(k_t0 + 3060);
  EXPECT_TRUE(host.check(k_t0 + 3600));
}

TEST(AutostopAgent, RunningJobsAreActivityFinishedOnesAreNot) {
  AgentHost host;
  host.run("--arm", k_t0);
  host.set_docker("3f2a9c1e77aa\n");
  EXPECT_FALSE(host.check(k_t0 + 600));
  EXPECT_NE(host.last_log_line().find("jobs: 1 running"), std::string::npos) << host.log();
  host.set_docker("");  // the job finished: its container stays, but not as a running one
  EXPECT_FALSE(host.check(k_t0 + 1199));
  EXPECT_TRUE(host.check(k_t0 + 1200));
}

TEST(AutostopAgent, LoggedInUsersAreActivity) {
  AgentHost host;
  host.run("--arm", k_t0);
  host.set_who("ubuntu   pts/0        2025-06-15 14:00 (203.0.113.9)\nubuntu   pts/1  x\n");
  EXPECT_FALSE(host.check(k_t0 + 600));
  EXPECT_NE(host.last_log_line().find("users: logged in: ubuntu"), std::string::npos);
  host.set_who("");
  EXPECT_TRUE(host.check(k_t0 + 1200));
}

TEST(AutostopAgent, LifetimeCapFiresDespiteActivity) {
  AgentHost host;
  host.config("IDLE_SECONDS=600\nMAX_LIFETIME_SECONDS=28800\n");
  host.run("--arm", k_t0);
  host.set_tcp(std::string(k_tcp_listen_only) + k_tcp_ssh_established);
  EXPECT_FALSE(host.check(k_t0 + 28799));
  EXPECT_TRUE(host.check(k_t0 + 28800));
  EXPECT_NE(host.last_log_line().find("poweroff: lifetime 8h00m >= max lifetime 8h00m"),
            std::string::npos)
      << host.log();
  // Lifetime only (no idle stop): an idle host stays up until the cap.
  host.config("IDLE_SECONDS=0\nMAX_LIFETIME_SECONDS=3600\n");
  host.set_tcp(k_tcp_listen_only);
  host.run("--arm", k_t0 + 40000);
  EXPECT_FALSE(host.check(k_t0 + 40000 + 3599));
  EXPECT_TRUE(host.check(k_t0 + 40000 + 3600));
}

TEST(AutostopAgent, RebootKeepsItArmedAndRestartsOnlyTheIdleClock) {
  AgentHost host;
  host.config("IDLE_SECONDS=600\nMAX_LIFETIME_SECONDS=7200\n");
  host.set_boot("boot-a", 100);
  host.run("--arm", k_t0);
  EXPECT_FALSE(host.check(k_t0 + 500));
  // Rebooted: down 90 s (a reboot, not a stop/start), first check 30 s into the new boot.
  long now = k_t0 + 500 + 90 + 30;
  host.set_boot("boot-b", 30);
  EXPECT_FALSE(host.check(now));
  EXPECT_NE(host.log().find("boot: reboot (down 1m30s)"), std::string::npos) << host.log();
  nlohmann::json s = host.status(now);
  EXPECT_EQ(s["idle_seconds"], 30);       // the idle clock restarted at boot
  EXPECT_EQ(s["lifetime_seconds"], 620);  // the lifetime clock did not
  EXPECT_EQ(s["fires_in_seconds"], 570);
  // The idle window counts from boot: fires 600 s after it.
  EXPECT_FALSE(host.check(now - 30 + 599));
  EXPECT_TRUE(host.check(now - 30 + 600));
}

TEST(AutostopAgent, BootAfterItsOwnPowerOffOrALongDowntimeIsANewLaunch) {
  AgentHost host;
  host.config("IDLE_SECONDS=600\nMAX_LIFETIME_SECONDS=7000\n");
  host.run("--arm", k_t0);
  EXPECT_TRUE(host.check(k_t0 + 600));
  // Started again a minute later (EC2 start): the lifetime restarts, not only the idle clock.
  host.set_boot("boot-b", 20);
  EXPECT_FALSE(host.check(k_t0 + 680));
  EXPECT_NE(host.log().find("boot: new launch (down 1m00s, after the autostop power-off)"),
            std::string::npos)
      << host.log();
  EXPECT_EQ(host.status(k_t0 + 680)["lifetime_seconds"], 20);
  // A user stop and start the next day (long downtime): also a new launch.
  host.set_boot("boot-c", 40);
  host.check(k_t0 + 90000);
  EXPECT_NE(host.last_log_line().find("check: idle 40s"), std::string::npos) << host.log();
  EXPECT_EQ(host.status(k_t0 + 90000)["lifetime_seconds"], 40);
}

TEST(AutostopAgent, DisarmedConfigNeverFires) {
  AgentHost host;
  host.run("--arm", k_t0);
  host.config("ENABLED=0\nIDLE_SECONDS=60\n");
  EXPECT_FALSE(host.check(k_t0 + 100000));
  EXPECT_NE(host.last_log_line().find("disarmed"), std::string::npos);
  EXPECT_EQ(host.status(k_t0 + 100000)["armed"], false);
  EXPECT_TRUE(host.status(k_t0 + 100000)["fires_in_seconds"].is_null());
}

TEST(AutostopAgent, StatusJsonParsesIntoWhatStatusPrints) {
  AgentHost host;
  host.run("--arm", k_t0);
  host.check(k_t0 + 300);
  gm::testing::CaptureResult r = host.run("--status", k_t0 + 300);
  AgentStatus s = parse_agent_status(r.out);
  EXPECT_TRUE(s.armed);
  ASSERT_TRUE(s.fires_in.has_value());
  EXPECT_EQ(s.fires_in->count(), 300);
  EXPECT_EQ(describe_status(s), "autostop fires in ~5 min (idle 5m of 10m, action stop)");
  EXPECT_EQ(describe_status(std::nullopt), "autostop: off");
}

bool have_shellcheck() {
  return std::system("command -v shellcheck >/dev/null 2>&1") == 0;
}

std::string shellcheck(const std::string& text) {
  TempDir dir("gm-sc");
  write_text(dir / "script.sh", text);
  gm::testing::CaptureResult r =
      run_capture({"shellcheck", "-s", "bash", (dir / "script.sh").string()});
  return r.status == 0 ? "" : r.out + r.err;
}

TEST(AutostopAgent, ScriptsAreShellcheckClean) {
  if (!have_shellcheck()) {
    GTEST_SKIP() << "shellcheck is not installed";
  }
  EXPECT_EQ(shellcheck(std::string(agent_script())), "");
  AutostopSettings s{std::chrono::minutes(30), AutostopAction::terminate, std::chrono::hours(8)};
  EXPECT_EQ(shellcheck(install_script(s)), "");
  EXPECT_EQ(shellcheck(uninstall_script()), "");
  EXPECT_EQ(shellcheck(status_command() + "\n"), "");
  EXPECT_EQ(shellcheck(new_launch_command() + "\n"), "");
}

/// A RemoteShell running `bash -c` here, for the install script under a scratch root.
class HereShell : public ssh::RemoteShell {
 public:
  explicit HereShell(std::map<std::string, std::string> env) : m_env(std::move(env)) {}
  int exec(const std::string& command, const ssh::OutputSink& out, const ssh::OutputSink& err,
           std::string_view stdin_data) override {
    SpawnOptions options;
    options.env = m_env;
    gm::testing::CaptureResult r =
        run_capture({"bash", "-c", command}, std::string(stdin_data), options);
    if (out)
      out(r.out);
    if (err)
      err(r.err);
    return r.status;
  }
  void upload(const std::string&, std::string_view, unsigned) override {}

 private:
  std::map<std::string, std::string> m_env;
};

TEST(AutostopAgent, InstallWritesUnitsEnablesTheTimerAndArmsInOneRoundTrip) {
  TempDir root("gm-autostop-root");
  AgentPaths paths;
  paths.script = (root / "usr/local/lib/gpumachine/gpumachine-autostop.sh").string();
  paths.config = (root / "etc/gpumachine/autostop.conf").string();
  paths.state = (root / "var/lib/gpumachine/autostop.state").string();
  paths.log = (root / "var/log/gpumachine/autostop.log").string();
  paths.systemd_dir = (root / "etc/systemd/system").string();
  write_text(root / "systemctl",
             "#!/bin/sh\necho \"$*\" >>" + (root / "systemctl.log").string() + "\n", 0755);
  HereShell shell({{"AUTOSTOP_SYSTEMCTL", (root / "systemctl").string()}});
  AutostopSettings s{std::chrono::minutes(30), AutostopAction::terminate, std::chrono::hours(8)};
  apply_on_host(shell, s, "machine 'm'", paths);

  EXPECT_EQ(read_text(root / "systemctl.log"),
            "daemon-reload\nenable --now gpumachine-autostop.timer\n");
  std::string timer = read_text(root / "etc/systemd/system/gpumachine-autostop.timer");
  EXPECT_NE(timer.find("OnCalendar=*-*-* *:*:00"), std::string::npos) << timer;
  EXPECT_NE(timer.find("Persistent=true"), std::string::npos);
  EXPECT_NE(timer.find("AccuracySec=1s"), std::string::npos);
  std::string service = read_text(root / "etc/systemd/system/gpumachine-autostop.service");
  EXPECT_NE(service.find("ExecStart=" + paths.script + " --check"), std::string::npos) << service;
  EXPECT_NE(service.find("Environment=AUTOSTOP_CONFIG=" + paths.config), std::string::npos);
  std::string conf = read_text(root / "etc/gpumachine/autostop.conf");
  EXPECT_NE(conf.find("IDLE_SECONDS=1800\n"), std::string::npos);
  EXPECT_NE(conf.find("MAX_LIFETIME_SECONDS=28800\n"), std::string::npos);
  EXPECT_NE(conf.find("ACTION=terminate\n"), std::string::npos);
  EXPECT_EQ(read_text(root / "usr/local/lib/gpumachine/gpumachine-autostop.sh"),
            std::string(agent_script()));
  EXPECT_NE(read_text(root / "var/log/gpumachine/autostop.log").find("arm: idle 30m00s"),
            std::string::npos);
  std::optional<AgentStatus> st = query_agent_status(shell, paths);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->armed);
  EXPECT_EQ(st->action, "terminate");

  // off: disabled, units gone, config says ENABLED=0, status says off.
  apply_on_host(shell, std::nullopt, "machine 'm'", paths);
  EXPECT_FALSE(std::filesystem::exists(root / "etc/systemd/system/gpumachine-autostop.timer"));
  EXPECT_NE(read_text(root / "systemctl.log").find("disable --now gpumachine-autostop.timer"),
            std::string::npos);
  EXPECT_NE(read_text(root / "etc/gpumachine/autostop.conf").find("ENABLED=0\n"),
            std::string::npos);
  EXPECT_FALSE(query_agent_status(shell, paths)->armed);
}

}  // namespace
}  // namespace gm::cost
