// End-to-end provisioning against simulated hosts (tests/support/simhost) through LocalShell: the
// real scripts, unmodified, with stubs modelling apt/dnf, the driver, Docker and reboots.
#include "provision/provisioner.h"
#include "provision/simhost_fixture.h"
#include "provision/step_error.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace gm::provision {
namespace {

using testing::LocalShell;
using testing::ProvisionSimHost;
using testing::read;
using testing::run_simhost;

TEST_F(ProvisionSimHost, FreshUbuntuT4WithNouveauInstallsRebootsAndVerifies) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--nouveau"});
  ProvisionResult r = run();

  EXPECT_EQ(r.plan.driver_branch, 595);
  EXPECT_EQ(r.plan.flavour, DriverFlavour::open);
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_EQ(outcome(r, StepId::reboot), StepOutcome::applied);
  EXPECT_EQ(outcome(r, StepId::fabric), StepOutcome::skipped);
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
  EXPECT_EQ(outcome(r, StepId::toolkit), StepOutcome::applied);
  EXPECT_EQ(outcome(r, StepId::verify), StepOutcome::checked);
  EXPECT_EQ(r.reboots, 1);
  EXPECT_EQ(m_reconnects, 1);
  EXPECT_EQ(r.handshakes, 2);
  // wait, facts, driver, reboot (+ wait/facts after it), docker, toolkit, verify
  EXPECT_EQ(r.round_trips, 8);

  // Canonical's precompiled modules, not DKMS.
  const std::string log = commands();
  EXPECT_NE(log.find("install linux-modules-nvidia-595-server-open-6.8.0-1015-aws"),
            std::string::npos);
  EXPECT_EQ(log.find("nvidia-open"), std::string::npos);
  EXPECT_NE(log.find("DPkg::Lock::Timeout="), std::string::npos);
  // needrestart only lists what would need a restart; it restarts nothing (mode "a" would).
  EXPECT_NE(log.find("needrestart mode l"), std::string::npos);
  EXPECT_EQ(log.find("needrestart mode a"), std::string::npos);
  EXPECT_TRUE(exists("root/etc/modprobe.d/gpumachine-blacklist-nouveau.conf"));

  EXPECT_FALSE(r.facts.nouveau_loaded);
  EXPECT_EQ(r.facts.loaded_driver_version, "595.91.07");
  EXPECT_EQ(r.versions.value("driver_version", ""), "595.91.07");
  EXPECT_EQ(r.versions.value("cuda_version", ""), "13.2");
  EXPECT_EQ(r.versions.value("toolkit_version", ""), "1.20.1");
  EXPECT_EQ(r.versions.value("docker_version", ""), "29.1.3");
  EXPECT_EQ(r.versions.value("container_check", ""), "passed");
  EXPECT_EQ(r.versions.value("gpus", ""), "Tesla T4");
  nlohmann::json record = r.record_facts();
  EXPECT_EQ(record["provision"]["driver_branch"], 595);
  EXPECT_EQ(record["host"]["gpus"][0]["generation"], "turing");

  // Every step's output also landed in the host's log.
  const std::string host_log = read(m_dir / "root/var/log/gpumachine/provision.log");
  EXPECT_NE(host_log.find("step toolkit"), std::string::npos);
  EXPECT_NE(host_log.find("Setting up nvidia-container-toolkit"), std::string::npos);
  // The docker group got the login user (here root, so nothing to add) and docker runs.
  EXPECT_TRUE(exists("services/docker.enabled"));
}

TEST_F(ProvisionSimHost, SecondRunOnAReadyHostAppliesNothing) {
  init({"--os", "ubuntu-22.04", "--gpu", "a10g"});
  ProvisionResult first = run();
  EXPECT_EQ(first.reboots, 0) << "the module loads without a reboot when nouveau is absent";
  clear_commands();

  ProvisionResult second = run();
  EXPECT_FALSE(second.changed());
  EXPECT_EQ(applied_count(second), 0);
  EXPECT_EQ(outcome(second, StepId::driver), StepOutcome::skipped);
  EXPECT_EQ(outcome(second, StepId::docker), StepOutcome::skipped);
  EXPECT_EQ(outcome(second, StepId::toolkit), StepOutcome::skipped);
  EXPECT_EQ(second.round_trips, 3);  // wait, facts, verify
  EXPECT_EQ(second.handshakes, 1);
  const std::string log = commands();
  EXPECT_EQ(log.find("apt-get"), std::string::npos) << log;
  EXPECT_EQ(log.find("systemctl restart"), std::string::npos) << log;
}

TEST_F(ProvisionSimHost, DeepLearningAmiSkipsStraightToVerification) {
  init({"--os", "ubuntu-22.04", "--gpu", "l4", "--dlami"});
  ProvisionResult r = run();
  EXPECT_EQ(applied_count(r), 0);
  EXPECT_TRUE(r.facts.dlami);
  EXPECT_EQ(r.round_trips, 3);
  EXPECT_EQ(r.versions.value("container_check", ""), "passed");
  EXPECT_EQ(commands().find("apt-get"), std::string::npos);
}

TEST_F(ProvisionSimHost, LoadedModuleOlderThanUserspaceReboots) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--driver", "595.91.07:open", "--loaded",
        "595.45.04"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::already_done)
      << "the plan cannot keep a mismatched driver, the script finds it installed";
  EXPECT_EQ(outcome(r, StepId::reboot), StepOutcome::applied);
  EXPECT_EQ(r.reboots, 1);
  EXPECT_EQ(r.facts.loaded_driver_version, "595.91.07");
  EXPECT_EQ(r.versions.value("driver_version", ""), "595.91.07");
}

TEST_F(ProvisionSimHost, WaitsForTheDpkgLock) {
  init({"--os", "ubuntu-24.04"});
  run_simhost({"hold-lock", m_dir.string(), "5"});
  auto began = std::chrono::steady_clock::now();
  ProvisionResult r = run();
  EXPECT_GE(std::chrono::steady_clock::now() - began, std::chrono::seconds(4));
  EXPECT_NE(m_output.find("waiting for the package manager lock"), std::string::npos) << m_output;
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
}

TEST_F(ProvisionSimHost, ToolkitFailureIsClearAndTheRerunResumesThere) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4"});
  std::ofstream(m_dir / "fail/nvidia-container-toolkit")
      << "Failed to fetch https://nvidia.github.io/libnvidia-container/stable/deb/amd64/"
         "nvidia-container-toolkit_1.20.1-1_amd64.deb  Connection timed out";
  try {
    run();
    FAIL() << "expected a StepError";
  } catch (const StepError& e) {
    EXPECT_EQ(e.step(), "toolkit");
    EXPECT_EQ(e.exit_status(), 100);
    EXPECT_NE(std::string(e.what()).find("step \"toolkit\" failed (exit 100)"), std::string::npos)
        << e.what();
    EXPECT_NE(e.cause().find("Connection timed out"), std::string::npos) << e.cause();
    EXPECT_FALSE(e.log_tail().empty());
    EXPECT_LE(e.log_tail().size(), 20u);
    EXPECT_NE(e.hint().find("resumes"), std::string::npos) << e.hint();
  }
  std::filesystem::remove(m_dir / "fail/nvidia-container-toolkit");
  clear_commands();

  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::skipped);
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::skipped);
  EXPECT_EQ(outcome(r, StepId::toolkit), StepOutcome::applied);
  const std::string log = commands();
  EXPECT_EQ(log.find("linux-modules-nvidia"), std::string::npos) << log;
  EXPECT_EQ(log.find("docker-ce"), std::string::npos) << log;
  EXPECT_NE(log.find("install nvidia-container-toolkit"), std::string::npos) << log;
}

TEST_F(ProvisionSimHost, NoGpuGetsDockerOnly) {
  init({"--os", "debian-12"});
  std::vector<std::string> notes;
  LocalShell shell(m_dir);
  Callbacks cb;
  cb.on_note = [&](std::string_view n) { notes.emplace_back(n); };
  ProvisionResult r = provision(shell, reconnect(), m_options, cb);
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::skipped);
  EXPECT_EQ(outcome(r, StepId::toolkit), StepOutcome::skipped);
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
  EXPECT_NE(std::find(notes.begin(), notes.end(), "no NVIDIA GPU on this host"), notes.end());
  EXPECT_EQ(commands().find("install nvidia"), std::string::npos);
  EXPECT_EQ(commands().find("nvidia-container-toolkit"), std::string::npos);
  EXPECT_EQ(r.versions.value("docker_version", ""), "29.1.3");
}

TEST_F(ProvisionSimHost, AmazonLinuxV100UsesTheDnfModuleStream) {
  init({"--os", "al2023", "--gpu", "v100"});
  ProvisionResult r = run();
  EXPECT_EQ(r.plan.driver_branch, 580);
  EXPECT_EQ(r.plan.flavour, DriverFlavour::proprietary);
  const std::string log = commands();
  EXPECT_NE(log.find("dnf -y -q module enable nvidia-driver:580-dkms"), std::string::npos) << log;
  EXPECT_NE(log.find("kmod-nvidia-latest-dkms"), std::string::npos);
  EXPECT_NE(log.find("install docker"), std::string::npos);
  EXPECT_EQ(r.versions.value("driver_version", ""), "580.95.05");
}

TEST_F(ProvisionSimHost, NoGspLoadsTheProprietaryModuleWithGspFirmwareOff) {
  init({"--os", "ubuntu-22.04", "--gpu", "a10g"});
  m_options.overrides.no_gsp = true;
  ProvisionResult r = run();
  EXPECT_EQ(r.plan.flavour, DriverFlavour::proprietary);
  EXPECT_NE(commands().find("install linux-modules-nvidia-595-server-6.5.0-1022-aws"),
            std::string::npos)
      << commands();
  EXPECT_EQ(read(m_dir / "root/etc/modprobe.d/gpumachine-gsp.conf"),
            "options nvidia NVreg_EnableGpuFirmware=0\n");
  EXPECT_EQ(read(m_dir / "root/proc/driver/nvidia/params"), "EnableGpuFirmware: 0\n");
  EXPECT_EQ(r.versions.value("container_check", ""), "passed");
  clear_commands();
  ProvisionResult again = run();
  EXPECT_EQ(applied_count(again), 0) << "GSP is off already: nothing to do";
}

TEST_F(ProvisionSimHost, NoGspOnAHostRunningTheOpenModulesSwitchesAndReboots) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4"});
  ProvisionResult first = run();
  ASSERT_EQ(first.plan.flavour, DriverFlavour::open);
  ASSERT_EQ(read(m_dir / "root/proc/driver/nvidia/params"), "EnableGpuFirmware: 18\n");

  m_options.overrides.no_gsp = true;
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_EQ(outcome(r, StepId::reboot), StepOutcome::applied);
  EXPECT_EQ(r.reboots, 1);
  EXPECT_NE(m_output.find("GSP firmware on"), std::string::npos) << m_output;
  EXPECT_EQ(read(m_dir / "root/proc/driver/nvidia/params"), "EnableGpuFirmware: 0\n");
  EXPECT_EQ(r.versions.value("container_check", ""), "passed");

  // Without the flag the working driver is kept as it is (the option file stays).
  m_options.overrides.no_gsp = false;
  ProvisionResult kept = run();
  EXPECT_EQ(applied_count(kept), 0);
  EXPECT_TRUE(exists("root/etc/modprobe.d/gpumachine-gsp.conf"));
}

TEST_F(ProvisionSimHost, NoGspThatAnEarlyInitramfsIgnoresFailsWithTheFix) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--driver", "595.91.07:open", "--early-nvidia"});
  m_options.overrides.no_gsp = true;
  try {
    run();
    FAIL() << "expected the reboot step to fail";
  } catch (const StepError& e) {
    EXPECT_EQ(e.step(), "reboot");
    EXPECT_NE(std::string(e.what()).find("still runs with GSP firmware on"), std::string::npos)
        << e.what();
    EXPECT_NE(e.hint().find("update-initramfs -u"), std::string::npos) << e.hint();
  }
}

TEST_F(ProvisionSimHost, H100WithNvswitchGetsFabricManagerOfTheDriversVersion) {
  init({"--os", "ubuntu-22.04", "--gpu", "h100", "--gpus", "8", "--nvswitch"});
  ProvisionResult r = run();
  EXPECT_TRUE(r.plan.nvswitch);
  EXPECT_TRUE(r.plan.nvlsm);
  EXPECT_EQ(outcome(r, StepId::fabric), StepOutcome::applied);
  const std::string log = commands();
  EXPECT_NE(log.find("nvidia-fabricmanager-595=595.91.07-*"), std::string::npos) << log;
  EXPECT_NE(log.find("nvlsm"), std::string::npos);
  EXPECT_EQ(r.versions.value("fabricmanager", ""), "active");
}

TEST_F(ProvisionSimHost, DebianWithSecureBootFailsWithAHint) {
  init({"--os", "debian-12", "--gpu", "t4", "--secure-boot"});
  try {
    run();
    FAIL() << "expected a StepError";
  } catch (const StepError& e) {
    EXPECT_EQ(e.step(), "driver");
    EXPECT_NE(e.hint().find("Secure Boot is on and DKMS modules cannot be signed"),
              std::string::npos)
        << e.hint();
  }
}

TEST_F(ProvisionSimHost, ContainerCheckIsANoteWhenImagesCannotBePulled) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--registry-offline"});
  ProvisionResult r = run();
  EXPECT_EQ(r.versions.value("container_check", ""), "no-pull");
  bool noted = false;
  for (const std::string& n : r.notes) {
    noted = noted || n.find("could not pull") != std::string::npos;
  }
  EXPECT_TRUE(noted);
}

TEST_F(ProvisionSimHost, NonRootLoginUsesSudo) {
  init({"--os", "ubuntu-24.04", "--uid", "1000", "--user", "ubuntu"});
  ProvisionResult r = run();
  EXPECT_NE(commands().find("sudo -n env DEBIAN_FRONTEND=noninteractive"), std::string::npos);
  EXPECT_NE(read(m_dir / "groups/docker").find("ubuntu"), std::string::npos);
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
}

TEST_F(ProvisionSimHost, LocalShellRefusesAnythingButASimulatedHost) {
  EXPECT_THROW(LocalShell("/"), std::runtime_error);
  EXPECT_THROW(LocalShell(""), std::runtime_error);
}

TEST_F(ProvisionSimHost, StubsRefuseToRunOutsideASimulatedHost) {
  init({"--os", "ubuntu-24.04"});
  LocalShell shell(m_dir);
  // Without the host's variables a stub must refuse, and nothing real is on PATH to fall back to.
  ssh::ExecResult r = shell.run("env -u SIMHOST_STATE apt-get install hello");
  EXPECT_NE(r.exit_status, 0);
  EXPECT_NE(r.err.find("refusing to run"), std::string::npos) << r.err;
  // Real tools outside the fixed safe list are unreachable (python3 is on it: the probe needs it).
  r = shell.run("perl -v");
  EXPECT_EQ(r.exit_status, 127);
}

}  // namespace
}  // namespace gm::provision

namespace gm::provision {
namespace {

TEST_F(ProvisionSimHost, UserDataPreludeInstallsAndSshOnlyFinishes) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--nouveau"});
  PreludeInputs in{"ubuntu", "24.04", "ubuntu", {GpuGeneration::turing}, false, {}};
  LocalShell boot(m_dir);
  ssh::ExecResult user_data = boot.run("bash -s", cloud_init_prelude(in));
  ASSERT_EQ(user_data.exit_status, 0) << user_data.out << user_data.err;
  EXPECT_EQ(user_data.out.find("failed"), std::string::npos) << user_data.out;
  clear_commands();

  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::already_done);
  EXPECT_EQ(outcome(r, StepId::reboot), StepOutcome::applied) << "nouveau was loaded";
  EXPECT_EQ(outcome(r, StepId::toolkit), StepOutcome::skipped);
  EXPECT_EQ(commands().find("apt-get"), std::string::npos) << commands();
  EXPECT_EQ(r.versions.value("container_check", ""), "passed");
}

}  // namespace
}  // namespace gm::provision
