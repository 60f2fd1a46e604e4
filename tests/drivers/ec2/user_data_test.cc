// Unit tests of the ec2 driver's pure parts: user data rendering and the state map.
#include "drivers/ec2/user_data.h"
#include "drivers/ec2/ec2_driver.h"
#include "support/scoped_env.h"

#include <gtest/gtest.h>

namespace gm::drivers::ec2 {
namespace {

UserDataParts parts() {
  UserDataParts p;
  p.host_private_key =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
  p.host_public_key = "ssh-ed25519 AAAAC3Nza host";
  p.boundary = "==gpumachine-x==";
  return p;
}

TEST(Ec2UserData, CloudConfigCarriesTheHostKeyIndented) {
  std::string text = render_user_data(parts());
  EXPECT_TRUE(text.starts_with("#cloud-config\n"));
  EXPECT_NE(text.find("ssh_deletekeys: true\n"), std::string::npos);
  EXPECT_NE(text.find("ssh_genkeytypes: [ed25519]\n"), std::string::npos);
  EXPECT_NE(text.find("  ed25519_private: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    AAAA\n"),
            std::string::npos);
  EXPECT_NE(text.find("  ed25519_public: ssh-ed25519 AAAAC3Nza host\n"), std::string::npos);
  EXPECT_EQ(text.find("ssh_authorized_keys"), std::string::npos);
  EXPECT_EQ(text.find("multipart"), std::string::npos);
}

TEST(Ec2UserData, UserDocumentBecomesASecondMimePart) {
  UserDataParts p = parts();
  p.authorized_keys = {"ssh-ed25519 BBBB me"};
  p.user_data = "#!/bin/bash\necho hi";
  std::string text = render_user_data(p);
  EXPECT_TRUE(text.starts_with("Content-Type: multipart/mixed; boundary=\"==gpumachine-x==\""));
  std::size_t config = text.find("Content-Type: text/cloud-config");
  std::size_t script = text.find("Content-Type: text/x-shellscript");
  ASSERT_NE(config, std::string::npos);
  ASSERT_NE(script, std::string::npos);
  EXPECT_LT(config, script);  // ours first: it is the one that pins the host key
  EXPECT_NE(text.find("ssh_authorized_keys:\n  - ssh-ed25519 BBBB me\n"), std::string::npos);
  EXPECT_NE(text.find("echo hi\n--==gpumachine-x==--\n"), std::string::npos);
  // Same inputs, same bytes: a resumed launch must repeat the request exactly.
  EXPECT_EQ(text, render_user_data(p));
  p.user_data = "#cloud-config\npackages: [htop]\n";
  EXPECT_NE(render_user_data(p).find("Content-Type: text/cloud-config; charset=\"utf-8\"\n"
                                     "MIME-Version: 1.0\nContent-Transfer-Encoding: 8bit\n\n"
                                     "#cloud-config\npackages"),
            std::string::npos);
}

TEST(Ec2StateMap, MapsEveryEc2State) {
  EXPECT_EQ(map_state("pending"), MachineState::pending);
  EXPECT_EQ(map_state("running"), MachineState::running);
  EXPECT_EQ(map_state("stopping"), MachineState::stopping);
  EXPECT_EQ(map_state("shutting-down"), MachineState::stopping);
  EXPECT_EQ(map_state("stopped"), MachineState::stopped);
  EXPECT_EQ(map_state("terminated"), MachineState::terminated);
  EXPECT_EQ(map_state("hibernating"), MachineState::unknown);
}

TEST(Ec2CallerIp, EnvironmentOverridesTheLookup) {
  // Restored afterwards: the test binary sets it so that nothing asks checkip.amazonaws.com.
  gm::test::ScopedEnv env;
  env.set("GPUMACHINE_CALLER_IP", "127.0.0.9");
  EXPECT_EQ(caller_cidr(), "127.0.0.9/32");
  env.set("GPUMACHINE_CALLER_IP", "10.1.0.0/16");
  EXPECT_EQ(caller_cidr(), "10.1.0.0/16");
  env.set("GPUMACHINE_CALLER_IP", "not-an-ip");
  EXPECT_THROW(caller_cidr(), UsageError);
  env.set("GPUMACHINE_CALLER_IP", "10.1.2.3/16");  // bits after the prefix
  EXPECT_THROW(caller_cidr(), UsageError);
}

}  // namespace
}  // namespace gm::drivers::ec2
