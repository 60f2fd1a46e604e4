#include "ssh/keys.h"
#include "gm/error.h"
#include "ssh/session.h"
#include "support/process.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace gm::ssh {
namespace {

using gm::testing::run_capture;
using gm::testing::TempDir;

std::string first_two_fields(const std::string& line) {
  std::size_t space = line.find(' ');
  std::size_t second = line.find_first_of(" \n", space + 1);
  return line.substr(0, second);
}

TEST(Keys, GeneratedKeyIsReadByOpenSshKeygen) {
  TempDir dir;
  KeyPair pair = generate_ed25519("gm@test");
  EXPECT_EQ(pair.private_openssh.rfind("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0), 0u);
  EXPECT_EQ(pair.public_openssh.rfind("ssh-ed25519 AAAA", 0), 0u);
  EXPECT_NE(pair.public_openssh.find(" gm@test"), std::string::npos);

  std::filesystem::path key = dir / "id_ed25519";
  write_key_pair(key, pair);
  struct stat st {};
  ASSERT_EQ(stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((key.string() + ".pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  // ssh-keygen -y derives the public key from our private file: it must parse it and agree.
  gm::testing::CaptureResult derived = run_capture({"ssh-keygen", "-y", "-f", key.string()});
  ASSERT_EQ(derived.status, 0) << derived.err;
  EXPECT_EQ(first_two_fields(derived.out), first_two_fields(pair.public_openssh));
}

TEST(Keys, PemLinesAreSeventyColumns) {
  KeyPair pair = generate_ed25519("");
  std::size_t start = pair.private_openssh.find('\n') + 1;
  std::size_t end = pair.private_openssh.find("-----END");
  std::string body = pair.private_openssh.substr(start, end - start);
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t nl = body.find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    std::size_t len = nl - pos;
    if (nl + 1 < body.size()) {
      EXPECT_EQ(len, 70u);
    } else {
      EXPECT_LE(len, 70u);
    }
    pos = nl + 1;
  }
  EXPECT_EQ(pair.public_openssh.find(' ', 12), std::string::npos) << "no comment expected";
}

TEST(Keys, TwoKeysDiffer) {
  EXPECT_NE(generate_ed25519("a").public_openssh, generate_ed25519("a").public_openssh);
}

TEST(Keys, FingerprintMatchesSshKeygen) {
  TempDir dir;
  std::filesystem::path key = dir / "id";
  KeyPair pair = generate_ed25519("fp");
  write_key_pair(key, pair);
  gm::testing::CaptureResult listed =
      run_capture({"ssh-keygen", "-l", "-E", "sha256", "-f", key.string() + ".pub"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  // "256 SHA256:xxxx fp (ED25519)"
  std::string expected = listed.out.substr(listed.out.find(' ') + 1);
  expected = expected.substr(0, expected.find(' '));
  EXPECT_EQ(fingerprint_sha256(pair.public_openssh), expected);

  // And for a key ssh-keygen made itself (RSA, to cover another key type).
  gm::testing::CaptureResult made = run_capture(
      {"ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", (dir / "rsa").string()});
  ASSERT_EQ(made.status, 0) << made.err;
  listed = run_capture({"ssh-keygen", "-l", "-f", (dir / "rsa.pub").string()});
  expected = listed.out.substr(listed.out.find(' ') + 1);
  expected = expected.substr(0, expected.find(' '));
  EXPECT_EQ(fingerprint_sha256(gm::testing::read_text(dir / "rsa.pub")), expected);
}

TEST(Keys, FingerprintRejectsGarbage) {
  EXPECT_THROW(fingerprint_sha256("ssh-ed25519 not-base64!"), gm::Error);
  EXPECT_THROW(fingerprint_sha256(""), gm::Error);
}

}  // namespace
}  // namespace gm::ssh
