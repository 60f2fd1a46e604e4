// The real test host harness itself: it boots, is reachable only as the fixture says, installs
// from the loopback repository, and leaves nothing behind.
#include "support/realhost.h"

#include "ssh/session.h"

#include <gtest/gtest.h>

namespace gm::testing {
namespace {

TEST(RealHost, BootsSystemdAndSshdAndInstallsFromTheLoopbackRepository) {
  GM_REQUIRE_REALHOST();
  LoopbackAptRepo repo("bookworm", {{"main",
                                     {{.name = "gm-hello",
                                       .version = "1.0",
                                       .depends = "gm-dep",
                                       .files = {{"/usr/bin/gm-hello", "#!/bin/sh\necho hi\n"}}},
                                      {.name = "gm-dep", .version = "2.0"}}}});
  std::filesystem::path root;
  {
    RealHost host;
    root = host.root();
    EXPECT_EQ(host.wait_until_running(), "running") << host.console();
    ssh::ExecResult who = host.connect()->run("id -un; sudo -n id -u; cat /proc/1/comm");
    EXPECT_EQ(who.out, "admin\n0\nsystemd\n");

    // The image has no sources of its own: apt sees only what a test gives it.
    EXPECT_EQ(host.run_root("apt-get update 2>&1 | grep -c '^Get\\|^Hit'").out, "0\n");
    repo.install_into(host, "gm-test");
    ssh::ExecResult update = host.run_root("apt-get update");
    ASSERT_EQ(update.exit_status, 0) << update.out << update.err;
    ssh::ExecResult install = host.run_root("apt-get install -y -q gm-hello && gm-hello");
    ASSERT_EQ(install.exit_status, 0) << install.out << install.err;
    EXPECT_NE(install.out.find("\nhi\n"), std::string::npos);
    EXPECT_NE(read_text(root / "var/log/gm-standin.log").find("gm-hello postinst configure"),
              std::string::npos);
  }
  // Torn down: unmounted (the mount point is gone with its temp dir) and no process left there.
  EXPECT_FALSE(std::filesystem::exists(root));
}

TEST(RealHost, EachHostIsItsOwnCopy) {
  GM_REQUIRE_REALHOST();
  RealHost a;
  a.run_root("touch /etc/gm-only-in-a");
  EXPECT_TRUE(std::filesystem::exists(a.root() / "etc/gm-only-in-a"));
  EXPECT_FALSE(std::filesystem::exists(realhost_image().root / "etc/gm-only-in-a"));
}

}  // namespace
}  // namespace gm::testing
