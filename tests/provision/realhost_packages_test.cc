// The provisioning steps' package logic on the real test host (tests/support/realhost.h): real
// systemd, apt and dpkg in a booted Debian 12, the vendors' repositories and Debian's kernel and
// Docker packages as stand-ins served through the product's mirror overrides
// (tests/support/vendor_mirror.h). Issue 10's numbers name the defect each test guards.
#include "provision/plan.h"
#include "provision/provisioner.h"
#include "ssh/session.h"
#include "support/realhost.h"
#include "support/vendor_mirror.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/utsname.h>

#include <memory>

namespace gm::provision {
namespace {

using gm::testing::read_text;
using gm::testing::RealHost;
using gm::testing::RunningHeaders;
using gm::testing::VendorMirror;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string root_out(const RealHost& host, const std::string& command) {
  return host.run_root(command).out;
}
bool installed(const RealHost& host, const std::string& package) {
  return root_out(host, "dpkg-query -W -f='${Status}' " + package + " 2>/dev/null") ==
         "install ok installed";
}

// A whole provisioning run over SSH (the host has no GPU: wait, facts, docker, verify).
ProvisionResult provision_host(const RealHost& host, const Mirrors& mirrors,
                               const Callbacks& callbacks = {}) {
  std::unique_ptr<ssh::Session> session = host.connect();
  ProvisionOptions options;
  options.overrides.mirrors = mirrors;
  options.poll_interval = std::chrono::seconds(1);
  options.wait_timeout = std::chrono::seconds(120);
  ReconnectFn no_reboot = []() -> std::unique_ptr<ssh::RemoteShell> {
    throw std::runtime_error("the host was not expected to reboot");
  };
  return provision(*session, no_reboot, options, callbacks);
}

// A booted real host whose only Debian source is the archive stand-in of a vendor mirror.
class MirroredHost : public ::testing::Test {
 protected:
  void boot(RunningHeaders headers = RunningHeaders::published) {
    m_mirror = std::make_unique<VendorMirror>(headers);
    m_host = std::make_unique<RealHost>();
    m_mirror->install_debian_archive(*m_host);
  }
  const RealHost& host() const { return *m_host; }
  const VendorMirror& mirror() const { return *m_mirror; }

 private:
  std::unique_ptr<VendorMirror> m_mirror;  // outlives the host that fetches from it
  std::unique_ptr<RealHost> m_host;
};
using RealHostDocker = MirroredHost;
using RealHostDriver = MirroredHost;

StepOutcome docker_outcome(const ProvisionResult& r) {
  for (const StepReport& s : r.steps) {
    if (s.id == StepId::docker) {
      return s.outcome;
    }
  }
  return StepOutcome::skipped;
}

// #2, starting state "none": Docker Engine from Docker's repository (the mirror), running,
// the login user in the docker group; the second run changes nothing.
TEST_F(RealHostDocker, NoEngineGetsDockerEngineFromTheMirror) {
  GM_REQUIRE_REALHOST();
  boot();
  std::vector<std::string> progress;  // what real apt's status lines said while it worked
  Callbacks callbacks;
  callbacks.on_progress = [&](std::string_view text) { progress.emplace_back(text); };
  ProvisionResult r = provision_host(host(), mirror().mirrors(), callbacks);
  EXPECT_EQ(docker_outcome(r), StepOutcome::applied);
  EXPECT_THAT(progress, Contains(StartsWith("downloading packages: ")));
  EXPECT_THAT(progress, Contains(StartsWith("installing packages (")));
  for (const char* p : {"docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                        "docker-compose-plugin"}) {
    EXPECT_TRUE(installed(host(), p)) << p;
  }
  EXPECT_EQ(root_out(host(), "systemctl is-active docker"), "active\n");
  EXPECT_THAT(root_out(host(), "id -nG admin"), HasSubstr("docker"));
  EXPECT_THAT(read_text(host().root() / "etc/apt/sources.list.d/docker.sources"),
              HasSubstr("URIs: " + mirror().mirrors().docker + "/debian\n"));
  EXPECT_EQ(root_out(host(), "docker --version"), "Docker version 29.1.3, build f52814d\n");

  ProvisionResult again = provision_host(host(), mirror().mirrors());
  EXPECT_FALSE(again.changed());
}

// #2, starting state "docker.io running, the user not in the docker group": the user joins and
// nothing is removed or downloaded (Docker's repository is not even reachable).
TEST_F(RealHostDocker, RunningDockerIoIsKeptAndTheUserJustJoins) {
  GM_REQUIRE_REALHOST();
  boot();
  ssh::ExecResult setup = host().run_root(
      "apt-get update -q && apt-get install -y -q docker.io && systemctl start docker");
  ASSERT_EQ(setup.exit_status, 0) << setup.out << setup.err;
  ASSERT_THAT(root_out(host(), "id -nG admin"), Not(HasSubstr("docker")));
  Mirrors unreachable = mirror().mirrors();
  unreachable.docker = "http://127.0.0.1:9/docker";  // nothing listens on port 9
  ProvisionResult r = provision_host(host(), unreachable);
  EXPECT_EQ(docker_outcome(r), StepOutcome::applied);
  EXPECT_TRUE(installed(host(), "docker.io"));
  EXPECT_FALSE(installed(host(), "docker-ce"));
  EXPECT_EQ(root_out(host(), "systemctl is-active docker"), "active\n");
  EXPECT_THAT(root_out(host(), "id -nG admin"), HasSubstr("docker"));
  EXPECT_THAT(read_text(host().root() / "var/log/apt/history.log"), Not(HasSubstr("Remove:")));
}

// #2, starting state "docker-ce installed and running, the user not in the group".
TEST_F(RealHostDocker, InstalledDockerCeOnlyAddsTheUser) {
  GM_REQUIRE_REALHOST();
  boot();
  ProvisionResult first = provision_host(host(), mirror().mirrors());
  ASSERT_EQ(docker_outcome(first), StepOutcome::applied);
  ASSERT_EQ(host().run_root("gpasswd -d admin docker").exit_status, 0);
  const std::string history = read_text(host().root() / "var/log/apt/history.log");
  ProvisionResult r = provision_host(host(), mirror().mirrors());
  EXPECT_EQ(docker_outcome(r), StepOutcome::applied);
  EXPECT_THAT(root_out(host(), "id -nG admin"), HasSubstr("docker"));
  EXPECT_EQ(read_text(host().root() / "var/log/apt/history.log"), history) << "nothing installed";
}

// The driver step's package logic on Debian 12, run as the provisioner sends it (the host has no
// GPU, so the plan is made for a T4 on Debian 12 and the step's script sent as it is).
ssh::ExecResult run_debian_driver_step(const RealHost& host, const Mirrors& mirrors) {
  nlohmann::json pci = {{{"slot", "0000:00:1e.0"}, {"device", "0x1eb8"}, {"class", "0x030200"}}};
  Facts facts = parse_facts({{"os", {{"id", "debian"}, {"version_id", "12"}}}, {"pci", pci}});
  Overrides overrides;
  overrides.mirrors = mirrors;
  Plan plan = plan_for(facts, overrides);
  const PlannedStep& driver = plan.step(StepId::driver);
  EXPECT_EQ(driver.script, "provision/scripts/debian/driver.sh");
  std::unique_ptr<ssh::Session> session = host.connect();
  return session->run("bash -s", compose_script(plan, "driver", {driver.script}));
}

// #4, #9: the headers meta-package with the running kernel's headers; the driver with what it
// recommends (nvidia-smi, libcuda, nvidia-persistenced); NVIDIA's repository through the mirror.
TEST_F(RealHostDriver, DebianDriverStepInstallsFromTheMirrorWithRecommends) {
  GM_REQUIRE_REALHOST();
  boot();
  ssh::ExecResult r = run_debian_driver_step(host(), mirror().mirrors());
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("gm: applied (driver 595 (open))"));
  utsname u{};
  ::uname(&u);
  for (const std::string& p : std::vector<std::string>{
           "nvidia-driver-pinning-595", "nvidia-open", "nvidia-smi", "libcuda1",
           "nvidia-persistenced", std::string("linux-headers-") + u.release}) {
    EXPECT_TRUE(installed(host(), p)) << p;
  }
  EXPECT_THAT(root_out(host(), "cat /etc/apt/sources.list.d/cuda-debian12-*.list"),
              HasSubstr(mirror().mirrors().cuda + "/debian12/"));
  EXPECT_EQ(root_out(host(), "systemctl is-enabled nvidia-persistenced"), "enabled\n");
  // A second run finds it done.
  ssh::ExecResult again = run_debian_driver_step(host(), mirror().mirrors());
  EXPECT_THAT(again.out, HasSubstr("gm: already done"));
}

// #6: a run that failed after cuda-keyring was installed, before the lists were refreshed.
TEST_F(RealHostDriver, DebianDriverStepResumesAfterTheKeyring) {
  GM_REQUIRE_REALHOST();
  boot();
  std::filesystem::copy_file(mirror().tree() / "cuda/debian12/x86_64/cuda-keyring_1.1-1_all.deb",
                             host().root() / "root/cuda-keyring.deb");
  ASSERT_EQ(host().run_root("dpkg -i /root/cuda-keyring.deb").exit_status, 0);
  ssh::ExecResult r = run_debian_driver_step(host(), mirror().mirrors());
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_TRUE(installed(host(), "nvidia-open"));
}

// #4: the running kernel's headers are gone from the archive: the kernel its meta-package follows
// is installed, the user is told, and the host is marked for the reboot into it.
TEST_F(RealHostDriver, DebianWithoutRunningKernelHeadersInstallsTheCurrentKernel) {
  GM_REQUIRE_REALHOST();
  boot(RunningHeaders::withdrawn);
  ssh::ExecResult r = run_debian_driver_step(host(), mirror().mirrors());
  ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no longer in the archive"));
  EXPECT_EQ(host().run_root("test -e /run/reboot-required").exit_status, 0);
  EXPECT_THAT(read_text(host().root() / "var/log/gm-standin.log"), HasSubstr("linux-image-"));
}

}  // namespace
}  // namespace gm::provision
