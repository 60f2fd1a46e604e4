// The user data the EC2 driver generates, through Debian's real cloud-init on the real test host
// (tests/support/realhost): the cloud-config installs the pinned host key, the provisioning prelude
// runs (and a step that fails inside it does not fail cloud-init), the user's own part runs, and
// user data over EC2's 16 KiB goes gzip-compressed.
#include "drivers/ec2/user_data.h"
#include "provision/provisioner.h"
#include "ssh/keys.h"
#include "ssh/session.h"
#include "support/realhost.h"

#include <gtest/gtest.h>

namespace gm::drivers::ec2 {
namespace {

using gm::testing::RealHost;

TEST(RealHostCloudInit, Ec2UserDataRunsEveryPartPinsTheHostKeyAndEndsDone) {
  GM_REQUIRE_REALHOST();
  const ssh::KeyPair host_key = ssh::generate_ed25519("");  // no comment, as the record pins it
  UserDataParts parts;
  parts.host_private_key = host_key.private_openssh;
  parts.host_public_key = host_key.public_openssh;
  // A user script large enough that the whole does not fit EC2's 16 KiB: what RunInstances gets
  // is then gzip-compressed, and cloud-init must inflate it.
  parts.user_data = "#!/bin/sh\n";
  for (int i = 0; i < 400; ++i) {
    parts.user_data += "# line " + std::to_string(i) + " of the user's own long comment\n";
  }
  parts.user_data += "echo user part ran >/var/tmp/gm-user-part\n";
  parts.boundary = "==gpumachine-realhost==";
  // What create sends for a CPU machine: the docker step. Here it fails (nothing beyond loopback
  // can be reached, so Docker's repository cannot), which must not fail cloud-init.
  provision::PreludeInputs in;
  in.os_id = "debian";
  in.os_version_id = "12";
  in.user = "admin";
  parts.provision_prelude = provision::cloud_init_prelude(in);

  const std::string sent = user_data_for_ec2(render_user_data(parts), "machine 'realhost'");
  ASSERT_TRUE(sent.starts_with("\x1f\x8b")) << "not gzip: " << sent.size() << " bytes";
  RealHost host({.user_data = sent});
  host.wait_until_running();
  ssh::ExecResult status = host.run_root("cloud-init status --wait --long");
  EXPECT_EQ(status.exit_status, 0)
      << status.out << status.err << host.run_root("cat /var/log/cloud-init-output.log").out;
  EXPECT_NE(status.out.find("status: done"), std::string::npos) << status.out;
  ssh::ExecResult schema = host.run_root("cloud-init schema --system");
  EXPECT_EQ(schema.exit_status, 0) << schema.out << schema.err;

  // The pinned key is the host's only key: a session pinned to it gets in.
  ssh::ConnectOptions pinned;
  pinned.target = host.target();
  pinned.target.host_key = parts.host_public_key;
  pinned.retry_for = std::chrono::seconds(10);
  EXPECT_EQ(ssh::Session::connect(pinned)->host_key(), parts.host_public_key);
  EXPECT_FALSE(std::filesystem::exists(host.root() / "etc/ssh/ssh_host_rsa_key"));

  // The prelude ran its step with the provisioner's log, and said the SSH side will redo it.
  const std::string log = gm::testing::read_text(host.root() / "var/log/gpumachine/provision.log");
  EXPECT_NE(log.find("step docker"), std::string::npos) << log;
  const std::string output = host.run_root("cat /var/log/cloud-init-output.log").out;
  EXPECT_NE(output.find("gpumachine: step docker failed"), std::string::npos) << output;
  // The user's own part ran too.
  EXPECT_EQ(gm::testing::read_text(host.root() / "var/tmp/gm-user-part"), "user part ran\n");
}

}  // namespace
}  // namespace gm::drivers::ec2
