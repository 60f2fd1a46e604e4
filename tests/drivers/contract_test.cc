// The driver contract suite: what every cloud driver must do, run through the real CLI against the
// driver's emulator. One parametrised suite; each driver is one DriverUnderTest.
//
// Adding a driver: write a class deriving from EmulatedDriver<ITS_EMULATOR_FIXTURE> below (the
// fixture starts the emulator and ends it by pid), and implement each member from the emulator's
// control API:
//   - create_args(): `create --driver NAME MACHINE` with the smallest size and the emulator's
//     login user;
//   - gm()/gm_async()/home(): the real binary with the driver's credentials env (a token,
//     endpoints on loopback, GPUMACHINE_CALLER_IP=127.0.0.1);
//   - leaks(): everything the provider still holds for a machine ("kind id" lines: droplets,
//     firewalls, SSH keys, ...), empty when nothing leaked;
//   - machine_states(), boot_host_key(), firewall_rules(): read from the emulator's state;
//   - fail_next_creates() / create_calls(): the emulator's fault injection (5xx, 429) on the
//     call that makes the machine;
//   - stop_saves_compute(): false for DigitalOcean (a powered-off droplet is billed: `stop`
//     must say so).
// Then add a line to drivers() at the bottom; every TEST_P runs against it.
#include "drivers/ec2/ec2_test_util.h"
#include "support/do_emulator.h"
#include "util/crypto.h"
#include "util/gzip.h"

#include <signal.h>

#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <thread>
#include <tuple>

namespace gm::testing {
namespace {

/// A firewall rule as the provider holds it.
struct FirewallRule {
  int port = 0;
  std::string protocol;
  std::string source;  ///< CIDR

  bool operator<(const FirewallRule& o) const {
    return std::tie(port, protocol, source) < std::tie(o.port, o.protocol, o.source);
  }
  bool operator==(const FirewallRule& o) const = default;
};

/// One driver and its emulator, running for one test.
class DriverUnderTest {
 public:
  virtual ~DriverUnderTest() = default;
  /// `create` arguments for a small machine called \a name (driver flags, login user).
  virtual std::vector<std::string> create_args(const std::string& name,
                                               std::vector<std::string> extra = {}) = 0;
  /// Runs the real binary against the emulator (\a env overlaid on the driver's).
  virtual CaptureResult gm(const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env = {}) = 0;
  virtual std::unique_ptr<Process> gm_async(const std::vector<std::string>& args) = 0;
  /// The gpumachine home the runs use.
  virtual std::filesystem::path home() const = 0;
  /// What the provider still holds ("kind id"); empty: nothing leaked.
  virtual std::vector<std::string> leaks() = 0;
  /// The provider's state of each machine it holds, by gpumachine machine name.
  virtual std::map<std::string, std::string> machine_states() = 0;
  /// The public host key ("ssh-ed25519 AAAA...") the machine \a name was handed at first boot.
  virtual std::string boot_host_key(const std::string& name) = 0;
  /// The inbound rules of the machine's own firewall.
  virtual std::set<FirewallRule> firewall_rules(const std::string& name) = 0;
  /// Makes the provider answer the next \a n machine-creating calls with a retryable error.
  virtual void fail_next_creates(int n) = 0;
  /// How many machine-creating calls the provider has seen.
  virtual int create_calls() = 0;
  /// Waits until the running \a p has made a machine-creating call; false if it ended first.
  virtual bool wait_for_create_call(Process& p) = 0;
  /// A stopped machine is not billed for compute (the driver's capability stop_saves_compute).
  virtual bool stop_saves_compute() const = 0;
  /// From now on a reboot is over (the host down and up again) as soon as it is asked for, as on
  /// a loaded machine where the client never sees the host go down.
  virtual void reboot_at_once() = 0;
};

/// What both emulators' fixtures answer alike: the real binary against them, its home, leaks.
template <typename Emulator>
class EmulatedDriver : public DriverUnderTest {
 public:
  explicit EmulatedDriver(const nlohmann::json& config) : m_emu(config) {}

  CaptureResult gm(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env) override {
    return m_emu.gm(args, env);
  }
  std::unique_ptr<Process> gm_async(const std::vector<std::string>& args) override {
    return m_emu.gm_async(args);
  }
  std::filesystem::path home() const override { return m_emu.home(); }
  std::vector<std::string> leaks() override { return m_emu.leaks(); }

 protected:
  Emulator m_emu;
};

class Ec2UnderTest final : public EmulatedDriver<Ec2EmulatorFixture> {
 public:
  Ec2UnderTest() : EmulatedDriver(nlohmann::json{{"delays", {{"pending", 1.0}}}}) {}

  std::vector<std::string> create_args(const std::string& name,
                                       std::vector<std::string> extra) override {
    return ec2::create_args(name, std::move(extra));
  }
  std::map<std::string, std::string> machine_states() override {
    std::map<std::string, std::string> out;
    for (const nlohmann::json& i : m_emu.live_instances()) {
      out[i["tags"].value("gpumachine:machine", "")] = i["state"].get<std::string>();
    }
    return out;
  }
  std::string boot_host_key(const std::string& name) override {
    // The cloud-config's ssh_keys.ed25519_public, as cloud-init would install it.
    std::string data = util::base64_decode(instance(name)["userData"].get<std::string>());
    if (data.starts_with("\x1f\x8b")) {
      data = util::gunzip(data);
    }
    auto at = data.find("ed25519_public: ");
    if (at == std::string::npos) {
      return {};
    }
    at += std::string("ed25519_public: ").size();
    return data.substr(at, data.find('\n', at) - at);
  }
  std::set<FirewallRule> firewall_rules(const std::string& name) override {
    nlohmann::json region = m_emu.state()["regions"]["us-east-1"];
    const nlohmann::json machine = instance(name);
    std::set<FirewallRule> rules;
    for (const auto& group : machine["groups"]) {
      for (const auto& rule : region["security_groups"][group.get<std::string>()]["ingress"]) {
        rules.insert({rule["fromPort"].get<int>(), rule["protocol"].get<std::string>(),
                      rule["cidr"].get<std::string>()});
      }
    }
    return rules;
  }
  void fail_next_creates(int n) override {
    m_emu.fault({{"action", "RunInstances"}, {"kind", "http503"}, {"count", n}});
  }
  int create_calls() override { return m_emu.count_calls("RunInstances"); }
  bool wait_for_create_call(Process& p) override {
    return ec2::wait_for_call(m_emu, p, "RunInstances");
  }
  bool stop_saves_compute() const override { return true; }
  void reboot_at_once() override { m_emu.configure({{"delays", {{"reboot", 0.0}}}}); }

 private:
  nlohmann::json instance(const std::string& name) {
    for (const nlohmann::json& i : m_emu.live_instances()) {
      if (i["tags"].value("gpumachine:machine", "") == name) {
        return i;
      }
    }
    ADD_FAILURE() << "no live instance of " << name;
    return nlohmann::json::object();
  }
};

class DoUnderTest final : public EmulatedDriver<DoEmulatorFixture> {
 public:
  DoUnderTest() : EmulatedDriver(nlohmann::json{{"delays", {{"create", 1.0}}}}) {}

  std::vector<std::string> create_args(const std::string& name,
                                       std::vector<std::string> extra) override {
    std::vector<std::string> args = {"create", "--driver",  "digitalocean",
                                     name,     "--do-size", "s-1vcpu-1gb"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::map<std::string, std::string> machine_states() override {
    std::map<std::string, std::string> out;
    const nlohmann::json state = m_emu.state();
    for (const auto& [id, d] : state["droplets"].items()) {
      if (d["deleted_at"].is_null()) {
        const std::string s = d["status"];
        out[machine_of(d)] = s == "active" ? "running" : s == "off" ? "stopped" : s;
      }
    }
    return out;
  }
  std::string boot_host_key(const std::string& name) override {
    const std::string data = droplet(name)["user_data"];
    auto at = data.find("ed25519_public: ");
    if (at == std::string::npos) {
      return {};
    }
    at += std::string("ed25519_public: ").size();
    return data.substr(at, data.find('\n', at) - at);
  }
  std::set<FirewallRule> firewall_rules(const std::string& name) override {
    // The firewalls applied to the droplet through its tags (and by id).
    nlohmann::json d = droplet(name);
    const nlohmann::json state = m_emu.state();
    std::set<FirewallRule> rules;
    for (const auto& [id, fw] : state["firewalls"].items()) {
      bool applies = std::find(fw["droplet_ids"].begin(), fw["droplet_ids"].end(), d["id"]) !=
                     fw["droplet_ids"].end();
      for (const auto& tag : fw["tags"]) {
        applies = applies || std::find(d["tags"].begin(), d["tags"].end(), tag) != d["tags"].end();
      }
      if (!applies) {
        continue;
      }
      for (const auto& rule : fw["inbound_rules"]) {
        for (const auto& source : rule["sources"].value("addresses", nlohmann::json::array())) {
          rules.insert({std::stoi(rule["ports"].get<std::string>()),
                        rule["protocol"].get<std::string>(), source.get<std::string>()});
        }
      }
    }
    return rules;
  }
  void fail_next_creates(int n) override {
    m_emu.fault({{"kind", "503"}, {"method", "POST"}, {"path", "/v2/droplets"}, {"count", n}});
  }
  int create_calls() override { return m_emu.count_calls("POST", "/v2/droplets"); }
  bool stop_saves_compute() const override { return false; }
  void reboot_at_once() override { m_emu.configure({{"delays", {{"action", 0.0}}}}); }
  bool wait_for_create_call(Process& p) override {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && p.is_running()) {
      if (create_calls() > 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  static std::string machine_of(const nlohmann::json& d) {
    for (const auto& tag : d["tags"]) {
      const std::string t = tag;
      if (t.starts_with("gpumachine:machine:")) {
        return t.substr(std::string("gpumachine:machine:").size());
      }
    }
    return {};
  }
  nlohmann::json droplet(const std::string& name) {
    const nlohmann::json state = m_emu.state();
    for (const auto& [id, d] : state["droplets"].items()) {
      if (d["deleted_at"].is_null() && machine_of(d) == name) {
        return d;
      }
    }
    ADD_FAILURE() << "no droplet of " << name;
    return nlohmann::json::object();
  }
};

/// A suite parameter: the driver's name and how to start it under test.
struct DriverParam {
  std::string name;
  std::function<std::unique_ptr<DriverUnderTest>()> make;

  friend void PrintTo(const DriverParam& p, std::ostream* os) { *os << p.name; }
};

class DriverContract : public ::testing::TestWithParam<DriverParam> {
 protected:
  void SetUp() override { m_driver = GetParam().make(); }
  DriverUnderTest& d() { return *m_driver; }

  nlohmann::json record(const std::string& name) {
    return nlohmann::json::parse(read_text(d().home() / "machines" / name / "machine.json"));
  }

 private:
  std::unique_ptr<DriverUnderTest> m_driver;
};

using ec2::describe;
using ec2::lines;

TEST_P(DriverContract, LifecycleLeavesNothing) {
  CaptureResult r = d().gm(d().create_args("life", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(d().machine_states()["life"], "running");
  r = d().gm({"ls", "--format", "json"});
  ASSERT_EQ(r.status, 0) << describe(r);
  nlohmann::json rows = nlohmann::json::parse(r.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["state"], "running");
  r = d().gm({"ssh", "life", "--", "echo", "contract"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("contract"), std::string::npos);

  // Autostop says it too, before it changes anything. (The emulated hosts have no systemd, so
  // installing the agent itself fails here; tests/cost/autostop_emulator_test.cc covers that.)
  r = d().gm({"autostop", "life", "30m"});
  EXPECT_EQ(r.err.find("still billed") == std::string::npos, d().stop_saves_compute()) << r.err;

  r = d().gm({"stop", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  // Stop tells the truth about billing where stopping does not end it.
  EXPECT_EQ(r.err.find("still billed") == std::string::npos, d().stop_saves_compute()) << r.err;
  EXPECT_EQ(d().machine_states()["life"], "stopped");
  r = d().gm({"status", "life"});
  EXPECT_EQ(r.out, "stopped\n") << describe(r);
  r = d().gm({"start", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(d().machine_states()["life"], "running");
  r = d().gm({"ssh", "life", "--", "true"});
  EXPECT_EQ(r.status, 0) << describe(r);

  r = d().gm({"rm", "life"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
  EXPECT_FALSE(std::filesystem::exists(d().home() / "machines/life"));
}

// restart returns once the machine answers from a new boot, even when the reboot was over before
// the client looked (under load the old boot's "down" is easily missed, and the same boot's sshd
// must not end the wait either).
TEST_P(DriverContract, RestartEndsInANewBoot) {
  CaptureResult r = d().gm(d().create_args("boot", {"--wait", "ssh"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::vector<std::string> read_boot_id = {"ssh", "boot", "--", "cat",
                                                 "\"$GM_SYSROOT/proc/sys/kernel/random/boot_id\""};
  r = d().gm(read_boot_id);
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::string before = r.out;
  d().reboot_at_once();
  r = d().gm({"restart", "boot"});
  ASSERT_EQ(r.status, 0) << describe(r);
  r = d().gm(read_boot_id);
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out, before);
  ASSERT_EQ(d().gm({"rm", "boot"}).status, 0);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
}

TEST_P(DriverContract, HostKeyIsPinnedBeforeTheFirstConnection) {
  // --wait running: create never connects, yet the record already pins the key the machine was
  // handed for its first boot.
  CaptureResult r = d().gm(d().create_args("pin", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  const std::string pinned = record("pin")["ssh"]["host_key"];
  EXPECT_TRUE(pinned.starts_with("ssh-ed25519 ")) << pinned;
  EXPECT_EQ(pinned, d().boot_host_key("pin"));
  ASSERT_EQ(d().gm({"rm", "pin"}).status, 0);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
}

TEST_P(DriverContract, FirewallAdmitsOnlySshFromTheCaller) {
  CaptureResult r = d().gm(d().create_args("wall", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(d().firewall_rules("wall"), (std::set<FirewallRule>{{22, "tcp", "127.0.0.1/32"}}));
  ASSERT_EQ(d().gm({"rm", "wall"}).status, 0);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
}

TEST_P(DriverContract, GcDeletesOnlyItsOwnHomesOrphans) {
  TempDir other("gm-contract-other");
  const std::map<std::string, std::string> teammate = {{"GPUMACHINE_HOME", other.path().string()}};
  ASSERT_EQ(d().gm(d().create_args("lost", {"--wait", "running"})).status, 0);
  ASSERT_EQ(d().gm(d().create_args("theirs", {"--wait", "running"}), teammate).status, 0);
  std::filesystem::remove_all(d().home() / "machines/lost");  // an orphan of this home

  CaptureResult r = d().gm({"--yes", "gc", "--delete", "--min-age", "0s"});
  ASSERT_EQ(r.status, 0) << describe(r);
  std::map<std::string, std::string> states = d().machine_states();
  EXPECT_FALSE(states.contains("lost")) << describe(r);
  EXPECT_EQ(states["theirs"], "running");  // another home's: kept

  ASSERT_EQ(d().gm({"rm", "theirs"}, teammate).status, 0);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
}

TEST_P(DriverContract, RetryableFaultsAreRetriedAndLeaveNothing) {
  d().fail_next_creates(2);
  CaptureResult r = d().gm(d().create_args("flaky", {"--wait", "running"}));
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_EQ(d().create_calls(), 3);
  EXPECT_EQ(d().machine_states().size(), 1u);
  ASSERT_EQ(d().gm({"rm", "flaky"}).status, 0);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
}

TEST_P(DriverContract, AnInterruptedCreateLeavesNothingAfterRm) {
  std::unique_ptr<Process> p = d().gm_async(d().create_args("cut"));
  ASSERT_TRUE(d().wait_for_create_call(*p));
  ::kill(p->pid(), SIGINT);
  EXPECT_EQ(p->wait(), 130);
  CaptureResult r = d().gm({"rm", "cut"});
  ASSERT_EQ(r.status, 0) << describe(r);
  EXPECT_TRUE(d().leaks().empty()) << lines(d().leaks());
}

std::vector<DriverParam> drivers() {
  return {
      {"ec2", [] { return std::make_unique<Ec2UnderTest>(); }},
      {"digitalocean", [] { return std::make_unique<DoUnderTest>(); }},
  };
}

INSTANTIATE_TEST_SUITE_P(Drivers, DriverContract, ::testing::ValuesIn(drivers()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace gm::testing
