// Unit tests of the ec2 driver's pure parts: user data rendering (drivers/cloud_init.h), EC2's
// size limit, the caller's address and the state map.
#include "drivers/ec2/user_data.h"
#include "drivers/caller_address.h"
#include "drivers/ec2/ec2_driver.h"
#include "support/scoped_env.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "gm/error.h"

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

// EC2 refuses more than 16 KiB of user data (before base64). What fits goes as it is; what does
// not goes gzip-compressed, the same bytes each time (a resumed launch repeats the request); what
// does not fit even then is refused naming the machine before any call.
TEST(Ec2UserData, OverEc2sLimitItIsGzippedAndBeyondThatRefused) {
  const std::string small = render_user_data(parts());
  EXPECT_EQ(user_data_for_ec2(small, "machine 'm'"), small);

  UserDataParts p = parts();
  p.user_data = "#!/bin/sh\n";
  while (p.user_data.size() < 3 * k_user_data_limit) {
    p.user_data += "echo a line of a long but ordinary script\n";
  }
  const std::string big = render_user_data(p);
  const std::string sent = user_data_for_ec2(big, "machine 'm'");
  EXPECT_TRUE(sent.starts_with("\x1f\x8b\x08"));  // gzip, deflate
  EXPECT_LE(sent.size(), k_user_data_limit);
  EXPECT_EQ(sent, user_data_for_ec2(big, "machine 'm'"));

  std::string noise = "#!/bin/sh\n# ";
  std::uint32_t x = 2463534242u;
  while (noise.size() < 2 * k_user_data_limit) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    noise += static_cast<char>('!' + x % 90);
  }
  p.user_data = noise;
  try {
    user_data_for_ec2(render_user_data(p), "machine 'm'");
    ADD_FAILURE() << "user data over the limit even compressed was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("machine 'm'"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--ec2-user-data"), std::string::npos) << e.hint();
  }
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
  EXPECT_EQ(caller_cidr("--ec2-ssh-cidr"), "127.0.0.9/32");
  env.set("GPUMACHINE_CALLER_IP", "10.1.0.0/16");
  EXPECT_EQ(caller_cidr("--ec2-ssh-cidr"), "10.1.0.0/16");
  env.set("GPUMACHINE_CALLER_IP", "not-an-ip");
  EXPECT_THROW(caller_cidr("--ec2-ssh-cidr"), UsageError);
  env.set("GPUMACHINE_CALLER_IP", "10.1.2.3/16");  // bits after the prefix
  EXPECT_THROW(caller_cidr("--ec2-ssh-cidr"), UsageError);
}

}  // namespace
}  // namespace gm::drivers::ec2
