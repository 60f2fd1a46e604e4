// The provisioning scripts on the real test host (tests/support/realhost): real systemd, apt, dpkg
// and their locks, real cloud-init, logged into as a non-root user with sudo over SSH. Stand-in
// packages from a loopback repository are the only fakes.
#include "support/realhost.h"
#include "cli/cli_runner.h"
#include "provision/plan.h"
#include "provision/provisioner.h"
#include "provision/step_error.h"
#include "ssh/session.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <sys/utsname.h>

namespace gm::provision {
namespace {

using gm::testing::LoopbackAptRepo;
using gm::testing::RealHost;
using gm::testing::RealHostOptions;
using gm::testing::StandinDeb;

/// Runs lib.sh, the given step scripts and then snippet in the host as the provisioner does
/// (`bash -s` as admin, sudo inside), with the plan-less parameters plus env.
ssh::ExecResult run_scripts(const RealHost& host, const std::vector<std::string>& scripts,
                            const std::string& snippet = "",
                            const std::map<std::string, std::string>& env = {}) {
  std::string text = compose_script(Plan{}, "test", scripts, env);
  text.insert(text.rfind("\n} </dev/null"), "\n" + snippet + "\n");
  return host.connect()->run("bash -s", text);
}

std::string script(const char* name) {
  return std::string("provision/scripts/") + name;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The facts step's JSON.
nlohmann::json facts_of(const RealHost& host) {
  ssh::ExecResult r = run_scripts(host, {script("facts.sh")});
  EXPECT_EQ(r.exit_status, 0) << r.out;
  const std::size_t at = r.out.find("gm: json ");
  if (at == std::string::npos) {
    ADD_FAILURE() << r.out;
    return {};
  }
  return nlohmann::json::parse(r.out.substr(at + 9, r.out.find('\n', at) - at - 9));
}

// Item 12: cloud-init installed but its units never run on this boot (a generic host where they
// were disabled): `cloud-init status --wait` would wait forever on "not run".
TEST(RealHostProvision, WaitStepDoesNotWaitForACloudInitThatNeverRuns) {
  GM_REQUIRE_REALHOST();
  RealHost host({.masked_units = {"cloud-init-local.service", "cloud-init.service",
                                  "cloud-config.service", "cloud-final.service"}});
  host.wait_until_running();
  ASSERT_TRUE(contains(host.run_root("cloud-init status").out, "not run"));
  ssh::ExecResult r = run_scripts(host, {script("wait.sh")}, "", {{"GM_WAIT_TIMEOUT", "20"}});
  EXPECT_EQ(r.exit_status, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "cloud-init is installed but does not run on this boot")) << r.out;
  EXPECT_FALSE(contains(r.out, "--wait-timeout")) << r.out;
}

TEST(RealHostProvision, WaitStepWaitsForCloudInitWhenItRuns) {
  GM_REQUIRE_REALHOST();
  RealHost host({.user_data = "#cloud-config\nruncmd:\n  - [sleep, '3']\n"});
  ssh::ExecResult r = run_scripts(host, {script("wait.sh")}, "", {{"GM_WAIT_TIMEOUT", "120"}});
  EXPECT_EQ(r.exit_status, 0) << r.out;
  EXPECT_TRUE(contains(host.run_root("cloud-init status").out, "status: done"));
}

// Item 3: another process holds the apt lists lock during update, then dpkg's lock during install.
TEST(RealHostProvision, AptUpdateAndInstallWaitForTheAptLock) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main", {{.name = "gm-hello", .version = "1.0"}}}});
  RealHost host;
  repo.install_into(host, "gm-test");
  // Holds LOCK (fcntl, as apt does) for a few seconds from a transient unit of the host's systemd.
  auto hold = [&](const std::string& lock) {
    const std::string marker = "/run/gm-lock-held";
    host.run_root("rm -f " + marker);
    ssh::ExecResult r = host.run_root(
        "systemd-run --collect --quiet python3 -c 'import fcntl,time; f=open(\"" + lock +
        "\",\"w\"); fcntl.lockf(f,fcntl.LOCK_EX); open(\"" + marker +
        "\",\"w\"); time.sleep(6)' && while [ ! -e " + marker + " ]; do sleep 0.1; done");
    ASSERT_EQ(r.exit_status, 0) << r.out << r.err;
  };

  hold("/var/lib/apt/lists/lock");
  ssh::ExecResult update = run_scripts(host, {}, "gm_apt update", {{"GM_POLL_SECONDS", "1"}});
  EXPECT_EQ(update.exit_status, 0) << update.out;
  EXPECT_TRUE(contains(update.out, "waiting for the apt lock")) << update.out;

  hold("/var/lib/dpkg/lock-frontend");
  ssh::ExecResult install = run_scripts(host, {}, "gm_apt_install gm-hello");
  EXPECT_EQ(install.exit_status, 0) << install.out;
  EXPECT_TRUE(contains(install.out, "Waiting for cache lock")) << install.out;
  EXPECT_TRUE(contains(gm::testing::read_text(host.root() / "var/log/gm-standin.log"),
                       "gm-hello postinst configure"));
}

// Item 11: apt-get update exits 0 when a repository cannot be reached; the step must not.
TEST(RealHostProvision, AptUpdateNamesAnUnreachableRepository) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main", {{.name = "gm-hello", .version = "1.0"}}}});
  RealHost host;
  repo.install_into(host, "gm-test");
  // Its own loopback address: apt's http method shares state between repositories of one host.
  const std::string dead =
      "http://127.0.0.2:" + std::to_string(gm::testing::free_port("127.0.0.2"));
  gm::testing::write_text(host.root() / "etc/apt/sources.list.d/dead.list",
                          "deb [trusted=yes] " + dead + " bookworm main\n");
  ssh::ExecResult r = run_scripts(host, {}, "gm_apt update");
  EXPECT_NE(r.exit_status, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "error: apt-get update could not fetch from " + dead)) << r.out;
  EXPECT_TRUE(contains(r.out, "gm: hint ")) << r.out;
  EXPECT_TRUE(contains(r.out, "Acquire::http::Proxy")) << r.out;
}

// Item 10: a package held with apt-mark hold is installed (not "missing"), and when apt must
// change it the error names it and how to release it.
TEST(RealHostProvision, HeldPackagesAreNamedWithHowToReleaseThem) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo old_repo("bookworm", {{"main", {{.name = "gm-held", .version = "1.0"}}}});
  LoopbackAptRepo new_repo(
      "bookworm", {{"main",
                    {{.name = "gm-held", .version = "2.0"},
                     {.name = "gm-wants-new", .version = "1.0", .depends = "gm-held (>= 2.0)"}}}});
  RealHost host;
  old_repo.install_into(host, "gm-test");
  ASSERT_EQ(
      host.run_root("apt-get update -q && apt-get install -y -q gm-held && apt-mark hold gm-held")
          .exit_status,
      0);
  new_repo.install_into(host, "gm-test");

  ssh::ExecResult installed = run_scripts(host, {}, "gm_deb_installed gm-held && echo INSTALLED");
  EXPECT_TRUE(contains(installed.out, "INSTALLED")) << installed.out;

  ssh::ExecResult r = run_scripts(host, {}, "gm_apt update\ngm_apt_install gm-wants-new");
  EXPECT_NE(r.exit_status, 0) << r.out;
  EXPECT_TRUE(
      contains(r.out, "error: apt will not change packages held with apt-mark hold: gm-held"))
      << r.out;
  EXPECT_TRUE(contains(r.out, "apt-mark unhold gm-held")) << r.out;
}

// Item 5: the driver step enables contrib on the layouts Debian's installer and images write;
// apt itself then finds a package that lives only in contrib.
TEST(RealHostProvision, DebianContribIsEnabledOnEverySourcesLayout) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main", {{.name = "gm-hello", .version = "1.0"}}},
                                    {"contrib", {{.name = "gm-contrib-only", .version = "1.0"}}},
                                    {"non-free-firmware", {}}});
  RealHost host;
  repo.install_into(host, "gm-test");  // for the keyring; the layouts below replace the sources
  const std::string key = "/etc/apt/keyrings/gm-test.gpg";
  const std::string url = repo.url();
  const std::map<std::string, std::pair<std::string, std::string>> layouts = {
      {"deb822 with non-free-firmware",
       {"etc/apt/sources.list.d/debian.sources",
        "Types: deb\nURIs: " + url +
            "\nSuites: bookworm\nComponents: main non-free-firmware\n"
            "Signed-By: " +
            key + "\n"}},
      {"installer sources.list with a cdrom comment",
       {"etc/apt/sources.list",
        "#deb cdrom:[Debian GNU/Linux 12.8.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm "
        "contrib main non-free-firmware\n\ndeb [signed-by=" +
            key + "] " + url + " bookworm main non-free-firmware\n"}},
      {"plain sources.list",
       {"etc/apt/sources.list", "deb [signed-by=" + key + "] " + url + " bookworm main\n"}},
  };
  for (const auto& [layout, file] : layouts) {
    SCOPED_TRACE(layout);
    host.run_root("rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*");
    gm::testing::write_text(host.root() / file.first, file.second);
    // The step itself; it stops later at NVIDIA's repository, which cannot be reached from here.
    run_scripts(host, {script("debian/driver.sh")}, "",
                {{"GM_BRANCH", "595"}, {"GM_FLAVOUR", "open"}});
    ssh::ExecResult r = host.run_root("apt-get update -q && apt-get install -s gm-contrib-only");
    EXPECT_EQ(r.exit_status, 0) << r.out << r.err
                                << gm::testing::read_text(host.root() / file.first);
  }
}

// Item 8: minimal Debian has no gpg; the toolkit step installs it before it needs it.
TEST(RealHostProvision, ToolkitStepInstallsGnupgBeforeUsingIt) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main",
                                     {{.name = "gnupg",
                                       .version = "2.2.40-1.1",
                                       .files = {{"/usr/bin/gpg", "#!/bin/sh\ncat\n"}}}}}});
  RealHost host;
  ASSERT_NE(host.run_root("command -v gpg").exit_status, 0) << "the image must not have gpg";
  repo.install_into(host, "gm-test");
  // It stops later at NVIDIA's repository, which cannot be reached from here.
  ssh::ExecResult r = run_scripts(host, {script("apt/toolkit.sh")});
  EXPECT_FALSE(contains(r.out, "gpg: command not found")) << r.out;
  EXPECT_TRUE(contains(gm::testing::read_text(host.root() / "var/log/gm-standin.log"),
                       "gnupg postinst configure"))
      << r.out;
}

// Item 13: Debian without unattended-upgrades has no /var/run/reboot-required: a newer kernel of
// the running flavour on disk is the pending reboot.
TEST(RealHostProvision, PendingRebootIsANewerKernelOnDisk) {
  GM_REQUIRE_REALHOST();
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  const std::string running = u.release;  // the container runs the test machine's kernel
  const std::string newer = "99" + running.substr(running.find('.'));
  const std::string older = "1" + running.substr(running.find('.'));
  LoopbackAptRepo repo("bookworm", {{"main",
                                     {{.name = "linux-image-" + older,
                                       .version = "1",
                                       .files = {{"/boot/vmlinuz-" + older, "old"}}},
                                      {.name = "linux-image-" + newer,
                                       .version = "1",
                                       .files = {{"/boot/vmlinuz-" + newer, "new"}}}}}});
  RealHost host;
  repo.install_into(host, "gm-test");
  ASSERT_EQ(
      host.run_root("apt-get update -q && apt-get install -y -q linux-image-" + older).exit_status,
      0);
  EXPECT_EQ(facts_of(host)["reboot_required"], false);
  ASSERT_EQ(host.run_root("apt-get install -y -q linux-image-" + newer).exit_status, 0);
  EXPECT_EQ(facts_of(host)["reboot_required"], true);
}

// Item 13: Secure Boot from the EFI variable when mokutil is absent (minimal Debian has none).
TEST(RealHostProvision, SecureBootIsReadFromTheEfiVariableWithoutMokutil) {
  GM_REQUIRE_REALHOST();
  gm::testing::TempDir dir("gm-efivar");
  // 4 bytes of attributes, then the value.
  gm::testing::write_text(dir / "on", std::string("\x06\x00\x00\x00\x01", 5));
  const std::string var =
      "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e98c7f5feee7";
  RealHost host(
      {.nspawn_args = {"--tmpfs=/sys/firmware", "--bind-ro=" + (dir / "on").string() + ":" + var}});
  ASSERT_NE(host.run_root("command -v mokutil").exit_status, 0);
  EXPECT_EQ(facts_of(host)["secure_boot"], "enabled");
  ssh::ExecResult r = run_scripts(host, {script("debian/driver.sh")}, "",
                                  {{"GM_BRANCH", "595"}, {"GM_FLAVOUR", "open"}});
  EXPECT_NE(r.exit_status, 0);
  EXPECT_TRUE(contains(r.out, "error: Secure Boot is on")) << r.out;
}

/// Docker's repository cannot be reached from here: a stand-in docker-ce (its daemon a systemd
/// unit that sleeps), installed beforehand with the group its postinst would add. The docker step
/// still enables it with the host's real systemd and adds the user to the group for real.
StandinDeb standin_docker() {
  StandinDeb docker{.name = "docker-ce", .version = "5:29.1.0-1~debian.12~bookworm"};
  docker.files = {
      {"/usr/bin/docker",
       "#!/bin/sh\ncase \"$1\" in\n  --version) echo 'Docker version 29.1.0, build 0000000' ;;\n"
       "  version) echo 29.1.0 ;;\nesac\n"},
      {"/lib/systemd/system/docker.service",
       "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"}};
  return docker;
}
void install_standin_docker(const RealHost& host, const LoopbackAptRepo& repo) {
  repo.install_into(host, "gm-test");
  ASSERT_EQ(
      host.run_root("apt-get update -q && apt-get install -y -q docker-ce && groupadd -f docker")
          .exit_status,
      0);
}

// The whole run on a host with no GPU, through provision() over SSH as admin: what it does, and
// that a second run changes nothing.
TEST(RealHostProvision, WholeRunWithoutGpuThenASecondRunChangesNothing) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main", {standin_docker()}}});
  RealHost host;
  install_standin_docker(host, repo);

  ProvisionOptions options;
  options.wait_timeout = std::chrono::seconds(120);
  options.poll_interval = std::chrono::seconds(1);
  auto reconnect = [&]() -> std::unique_ptr<ssh::RemoteShell> { return host.connect(); };
  std::string output;
  Callbacks cb;
  cb.on_output = [&](std::string_view line) { output += std::string(line) + "\n"; };

  std::unique_ptr<ssh::Session> session = host.connect();
  ProvisionResult first;
  try {
    first = provision(*session, reconnect, options, cb);
  } catch (const std::exception& e) {
    FAIL() << e.what() << "\n" << output;
  }
  EXPECT_EQ(first.facts.os_id, "debian");
  EXPECT_FALSE(first.plan.has_gpu);
  EXPECT_TRUE(first.changed());
  EXPECT_EQ(first.versions.value("docker_version", ""), "29.1.0");
  EXPECT_EQ(host.run_root("systemctl is-enabled docker; systemctl is-active docker; id -nG admin")
                .out.find("enabled\nactive\n"),
            0u);
  EXPECT_TRUE(contains(host.run_root("id -nG admin").out, "docker"));

  output.clear();
  ProvisionResult second = provision(*host.connect(), reconnect, options, cb);
  EXPECT_FALSE(second.changed()) << output;
  EXPECT_EQ(second.reboots, 0);
}

// The same through the binary: `gpumachine create --driver generic` at the host's sshd provisions
// it, and `gpumachine provision` afterwards changes nothing.
TEST(RealHostProvision, GenericCreateProvisionsAndProvisionAgainChangesNothing) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main", {standin_docker()}}});
  RealHost host;
  install_standin_docker(host, repo);
  const SshTarget t = host.target();
  gm::testing::CliRunner cli;
  std::vector<std::string> create =
      cli.generic_create_args("real", t.host, t.port, t.user, t.key_path);
  create.erase(std::find(create.begin(), create.end(), "--no-provision"));
  gm::testing::CaptureResult made = cli.run(create);
  ASSERT_EQ(made.status, 0) << made.out << made.err;
  EXPECT_TRUE(contains(host.run_root("id -nG admin").out, "docker"));

  nlohmann::json again = cli.json({"provision", "real"});
  EXPECT_EQ(again.value("changed", true), false) << again.dump(2);
}

}  // namespace
}  // namespace gm::provision
