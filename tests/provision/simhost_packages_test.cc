// The package logic of the provisioning steps against simulated hosts: the docker step from each
// starting state, kernel headers that follow kernel updates, resuming after a failed driver step,
// Amazon Linux 2023's kernels, architectures and module streams, repository mirrors. Each test
// names the defect it guards (issue 10's numbers).
#include "provision/simhost_fixture.h"
#include "provision/step_error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gm::provision {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ProvisionSimHost;
using testing::read;

// The lines of the simulated host's command log that ran `apt-get` (the stub's own lines,
// without the sudo/env wrappers in front of it).
std::vector<std::string> apt_lines(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("apt-get ")) {
      out.push_back(line);
    }
  }
  return out;
}

// #2: a running docker.io and a user outside the docker group: the user joins, nothing is
// reinstalled (here Docker's repository cannot even be reached).
TEST_F(ProvisionSimHost, RunningDockerIoIsKeptAndTheUserJustJoinsTheGroup) {
  init({"--os", "debian-12", "--docker-io", "--uid", "1000", "--offline"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
  EXPECT_TRUE(exists("pkgs/docker.io"));
  EXPECT_EQ(read(m_dir / "groups/docker"), "ubuntu\n");
  for (const std::string& line : apt_lines(commands())) {
    EXPECT_THAT(line, Not(HasSubstr(" remove "))) << line;
    EXPECT_THAT(line, Not(HasSubstr(" install "))) << line;
  }
  EXPECT_EQ(r.versions.value("docker_version", ""), "20.10.24+dfsg1");
}

// #2: an engine that does not start is replaced, but only once the replacement is downloaded: a
// failed download leaves it installed.
TEST_F(ProvisionSimHost, BrokenDockerIoIsRemovedOnlyAfterTheReplacementIsDownloaded) {
  init({"--os", "debian-12", "--docker-io", "--docker-broken", "--uid", "1000", "--offline"});
  EXPECT_THROW(run(), StepError);
  EXPECT_TRUE(exists("pkgs/docker.io"));

  std::ofstream(m_dir / "conf/offline") << "0\n";
  clear_commands();
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
  EXPECT_FALSE(exists("pkgs/docker.io"));
  EXPECT_TRUE(exists("pkgs/docker-ce"));
  std::vector<std::string> apt = apt_lines(commands());
  auto at = [&](const std::string& what) {
    return std::find_if(apt.begin(), apt.end(),
                        [&](const std::string& l) { return l.find(what) != std::string::npos; }) -
           apt.begin();
  };
  EXPECT_LT(at("install --download-only docker-ce"), at("remove docker.io"));
  EXPECT_LT(at("remove docker.io"), at("install docker-ce"));
  EXPECT_LT(at("install docker-ce"), static_cast<long>(apt.size()));
  // docker-ce comes with what it recommends (#9).
  EXPECT_THAT(apt[at("install docker-ce")], Not(HasSubstr("--no-install-recommends")));
}

// #2: docker-ce already there, the user outside the group: joined, nothing installed.
TEST_F(ProvisionSimHost, DockerCeWithTheUserOutsideTheGroupOnlyAddsTheUser) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--dlami", "--uid", "1000"});
  std::ofstream(m_dir / "groups/docker", std::ios::trunc);
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::docker), StepOutcome::applied);
  EXPECT_EQ(read(m_dir / "groups/docker"), "ubuntu\n");
  EXPECT_TRUE(apt_lines(commands()).empty()) << commands();
}

// #6: a run that failed after cuda-keyring was installed but before the lists were refreshed.
TEST_F(ProvisionSimHost, DriverStepResumesAfterTheKeyringWasInstalled) {
  init({"--os", "debian-12", "--gpu", "t4", "--cuda-keyring"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_THAT(commands(), HasSubstr("install nvidia-open"));
}

// #4 and #9: the headers meta-package follows kernel updates; NVIDIA's Debian-style driver
// packages come with what they recommend (nvidia-smi), and the step checks that it came.
TEST_F(ProvisionSimHost, DebianDriverFollowsKernelUpdatesAndBringsNvidiaSmi) {
  init({"--os", "debian-12", "--gpu", "t4"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::verify), StepOutcome::checked);
  EXPECT_EQ(r.versions.value("driver_version", ""), "595.91.07");
  const std::string log = commands();
  EXPECT_THAT(log, HasSubstr("install linux-headers-cloud-amd64 linux-headers-6.1.0-28-cloud-amd64 "
                             "nvidia-driver-pinning-595"));
  bool driver_line = false;
  for (const std::string& line : apt_lines(log)) {
    if (line.ends_with(" install nvidia-open")) {
      driver_line = true;
      EXPECT_THAT(line, Not(HasSubstr("--no-install-recommends")));
    }
  }
  EXPECT_TRUE(driver_line) << log;
}

// #4: the running kernel's headers are gone from the archive: the current kernel is installed
// with its headers, the user is told, and the host reboots into it.
TEST_F(ProvisionSimHost, DebianWithoutHeadersForTheRunningKernelUpgradesItAndReboots) {
  init({"--os", "debian-12", "--gpu", "t4"});
  std::ofstream(m_dir / "conf/unavailable") << "linux-headers-6.1.0-28-cloud-amd64\n";
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_EQ(outcome(r, StepId::reboot), StepOutcome::applied);
  EXPECT_EQ(r.reboots, 1);
  EXPECT_EQ(r.facts.kernel, "6.1.0-928-cloud-amd64");
  EXPECT_THAT(m_output, HasSubstr("no longer in the archive"));
  EXPECT_THAT(commands(), HasSubstr("install linux-headers-cloud-amd64 linux-image-cloud-amd64"));
}

// #13: Ubuntu's HWE and LTS-pinned kernels follow their own meta-packages.
TEST_F(ProvisionSimHost, UbuntuHweAndLtsKernelsGetTheirSeriesModulesMeta) {
  for (auto [kernel, meta] : {std::pair{"6.8.0-52-generic", "generic-hwe-22.04"},
                              std::pair{"6.8.0-1024-aws", "aws-lts-22.04"}}) {
    SCOPED_TRACE(meta);
    init({"--os", "ubuntu-22.04", "--gpu", "t4", "--kernel", kernel, "--kernel-meta", meta});
    ProvisionResult r = run();
    EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
    EXPECT_THAT(commands(),
                HasSubstr(" linux-modules-nvidia-595-server-open-" + std::string(meta) + " "));
  }
}

// #13: nvidia-persistenced is enabled only where a package installed its unit.
TEST_F(ProvisionSimHost, PersistencedIsEnabledOnlyWhereItExists) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--no-persistenced"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_THAT(commands(), Not(HasSubstr("systemctl enable nvidia-persistenced")));
  EXPECT_THAT(m_output, HasSubstr("no nvidia-persistenced service on this host"));
}

// #13: the toolkit step restarts Docker (stopping its containers) only when the nvidia runtime
// changed Docker's configuration.
TEST_F(ProvisionSimHost, ToolkitLeavesARunningDockerAloneWhenItsConfigurationIsUnchanged) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4", "--dlami"});
  std::filesystem::remove(m_dir / "pkgs/nvidia-container-toolkit");
  std::filesystem::remove(m_dir / "bin/nvidia-ctk");
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::toolkit), StepOutcome::applied);
  EXPECT_THAT(commands(), Not(HasSubstr("systemctl restart docker")));
}

TEST_F(ProvisionSimHost, ToolkitSaysWhyItRestartsDocker) {
  init({"--os", "ubuntu-24.04", "--gpu", "t4"});
  run();
  EXPECT_THAT(commands(), HasSubstr("systemctl restart docker"));
  EXPECT_THAT(m_output,
              HasSubstr("restarting docker: the nvidia runtime changed its configuration"));
}

// #7: Amazon Linux 2023 on a 6.12 kernel, on Graviton (aarch64), and switching branches.
TEST_F(ProvisionSimHost, AmazonLinux612KernelUsesItsSeriesDevelPackages) {
  init({"--os", "al2023", "--gpu", "t4", "--kernel", "6.12.40-63.114.amzn2023.x86_64"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_THAT(commands(), HasSubstr("install dkms kernel6.12-devel-6.12.40-63.114.amzn2023.x86_64 "
                                    "kernel6.12-modules-extra-6.12.40-63.114.amzn2023.x86_64"));
}

TEST_F(ProvisionSimHost, AmazonLinuxOnAarch64UsesNvidiasSbsaRepository) {
  init({"--os", "al2023", "--gpu", "t4", "--arch", "aarch64"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_THAT(commands(), HasSubstr("/amzn2023/sbsa/cuda-amzn2023.repo"));
}

TEST_F(ProvisionSimHost, AmazonLinuxBranchChangeResetsTheModuleStream) {
  init({"--os", "al2023", "--gpu", "t4", "--driver", "580.95.05:proprietary"});
  m_options.overrides.driver_branch = 595;
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::driver), StepOutcome::applied);
  EXPECT_EQ(read(m_dir / "dnf/stream"), "595-open\n");
  EXPECT_EQ(r.versions.value("driver_version", ""), "595.91.07");
}

// Debian 13 has a recipe; its CUDA repository is debian13.
TEST_F(ProvisionSimHost, Debian13GetsTheDebian13CudaRepository) {
  init({"--os", "debian-13", "--gpu", "t4"});
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::verify), StepOutcome::checked);
  EXPECT_THAT(commands(), HasSubstr("/debian13/x86_64/cuda-keyring_1.1-1_all.deb"));
}

// Mirrors: every repository the scripts fetch from, and every sources file they leave, name the
// mirror instead of the vendor.
TEST_F(ProvisionSimHost, MirrorsReplaceEveryVendorRepository) {
  init({"--os", "debian-12", "--gpu", "t4"});
  m_options.overrides.mirrors = {"http://127.0.0.1:9/docker", "http://127.0.0.1:9/cuda",
                                 "http://127.0.0.1:9/nvidia"};
  ProvisionResult r = run();
  EXPECT_EQ(outcome(r, StepId::verify), StepOutcome::checked);
  const std::string log = commands();
  EXPECT_THAT(log, HasSubstr("curl -fsSL http://127.0.0.1:9/docker/debian/gpg"));
  EXPECT_THAT(log, HasSubstr("http://127.0.0.1:9/cuda/debian12/x86_64/cuda-keyring_1.1-1_all.deb"));
  EXPECT_THAT(log, HasSubstr("curl -fsSL http://127.0.0.1:9/nvidia/stable/deb/"));
  std::string sources;
  for (const auto& f : std::filesystem::directory_iterator(m_dir / "root/etc/apt/sources.list.d")) {
    sources += read(f.path());
  }
  EXPECT_THAT(sources, HasSubstr("URIs: http://127.0.0.1:9/docker/debian"));
  EXPECT_THAT(sources, HasSubstr("http://127.0.0.1:9/cuda/debian12/x86_64/ /"));
  EXPECT_THAT(sources, HasSubstr("http://127.0.0.1:9/nvidia/stable/deb/"));
  for (const char* vendor :
       {"download.docker.com", "developer.download.nvidia.com", "nvidia.github.io"}) {
    EXPECT_THAT(log + sources, Not(HasSubstr(vendor)));
  }
}

}  // namespace
}  // namespace gm::provision
