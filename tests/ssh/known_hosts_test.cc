#include "ssh/known_hosts.h"
#include "ssh/keys.h"
#include "support/process.h"

#include <gtest/gtest.h>

namespace gm::ssh {
namespace {

using gm::testing::read_text;
using gm::testing::run_capture;
using gm::testing::TempDir;
using gm::testing::write_text;

std::string key_of(const KeyPair& pair) {
  return pair.public_openssh.substr(0, pair.public_openssh.rfind(' '));
}

class KnownHosts : public ::testing::Test {
 protected:
  TempDir m_dir;
  std::string m_ed = key_of(generate_ed25519("x"));
  std::string m_ed2 = key_of(generate_ed25519("y"));
  std::string m_ecdsa =
      "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy"
      "7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=";
};

TEST_F(KnownHosts, PlainEntriesWithPatternsAndPorts) {
  write_text(m_dir / "known_hosts",
             "# a comment\n"
             "\n"
             "other.example " +
                 m_ed2 +
                 "\n"
                 "10.0.0.1,gpu.example " +
                 m_ed +
                 " comment here\n"
                 "[gpu.example]:2222 " +
                 m_ed2 +
                 "\n"
                 "*.wild.example " +
                 m_ed2 +
                 "\n"
                 "*.neg.example,!bad.neg.example " +
                 m_ed + "\n");
  std::filesystem::path file = m_dir / "known_hosts";
  EXPECT_EQ(find_known_host(file, "gpu.example", 22), m_ed);
  EXPECT_EQ(find_known_host(file, "10.0.0.1", 22), m_ed);
  EXPECT_EQ(find_known_host(file, "gpu.example", 2222), m_ed2);
  EXPECT_EQ(find_known_host(file, "GPU.example", 22), m_ed);
  EXPECT_EQ(find_known_host(file, "a.wild.example", 22), m_ed2);
  EXPECT_EQ(find_known_host(file, "good.neg.example", 22), m_ed);
  EXPECT_EQ(find_known_host(file, "bad.neg.example", 22), std::nullopt);
  EXPECT_EQ(find_known_host(file, "gpu.example", 2200), std::nullopt);
  EXPECT_EQ(find_known_host(file, "nowhere", 22), std::nullopt);
  EXPECT_EQ(find_known_host(m_dir / "missing", "gpu.example", 22), std::nullopt);
}

TEST_F(KnownHosts, PrefersEd25519AndSkipsMarkers) {
  write_text(m_dir / "known_hosts", "@revoked h " + m_ed2 +
                                        "\n"
                                        "@cert-authority h " +
                                        m_ed2 +
                                        "\n"
                                        "h " +
                                        m_ecdsa +
                                        "\n"
                                        "h " +
                                        m_ed + "\n");
  EXPECT_EQ(find_known_host(m_dir / "known_hosts", "h", 22), m_ed);
  write_text(m_dir / "only_ecdsa", "h " + m_ecdsa + "\n@revoked h " + m_ed + "\n");
  EXPECT_EQ(find_known_host(m_dir / "only_ecdsa", "h", 22), m_ecdsa);
}

TEST_F(KnownHosts, MarkersAreReportedForMatchingHosts) {
  write_text(m_dir / "known_hosts", "@revoked *.example " + m_ed2 + "\n@revoked other " + m_ecdsa +
                                        "\n@cert-authority *.ca.example " + m_ecdsa +
                                        "\nh.example " + m_ed2 + "\nh.example " + m_ecdsa + "\n");
  KnownHost h = lookup_known_host(m_dir / "known_hosts", "h.example", 22);
  EXPECT_EQ(h.revoked, std::vector<std::string>{m_ed2});
  EXPECT_FALSE(h.cert_authority);
  EXPECT_EQ(h.key, m_ecdsa);  // the ed25519 one is revoked
  KnownHost ca = lookup_known_host(m_dir / "known_hosts", "gpu.ca.example", 22);
  EXPECT_TRUE(ca.cert_authority);
  EXPECT_EQ(ca.key, std::nullopt);
  EXPECT_EQ(ca.revoked, std::vector<std::string>{m_ed2});
  KnownHost none = lookup_known_host(m_dir / "missing", "h.example", 22);
  EXPECT_TRUE(none.revoked.empty());
  EXPECT_FALSE(none.cert_authority);
}

TEST_F(KnownHosts, HashedEntriesFromSshKeygen) {
  std::filesystem::path file = m_dir / "known_hosts";
  write_text(file, known_hosts_line("hashed.example", 22, m_ed) + "\n" +
                       known_hosts_line("127.0.0.5", 2222, m_ed2) + "\n");
  gm::testing::CaptureResult hashed = run_capture({"ssh-keygen", "-H", "-f", file.string()});
  ASSERT_EQ(hashed.status, 0) << hashed.err;
  std::string content = read_text(file);
  ASSERT_EQ(content.rfind("|1|", 0), 0u) << content;
  ASSERT_EQ(content.find("hashed.example"), std::string::npos);
  EXPECT_EQ(find_known_host(file, "hashed.example", 22), m_ed);
  EXPECT_EQ(find_known_host(file, "127.0.0.5", 2222), m_ed2);
  EXPECT_EQ(find_known_host(file, "127.0.0.5", 22), std::nullopt);
  EXPECT_EQ(find_known_host(file, "other.example", 22), std::nullopt);
}

TEST_F(KnownHosts, LineFormat) {
  EXPECT_EQ(known_hosts_line("h", 22, m_ed + "\n"), "h " + m_ed);
  EXPECT_EQ(known_hosts_line("127.0.0.1", 2200, m_ed), "[127.0.0.1]:2200 " + m_ed);
  // ssh-keygen -F finds what we write (OpenSSH agrees on the format).
  std::filesystem::path file = m_dir / "kh";
  write_text(file, known_hosts_line("127.0.0.1", 2200, m_ed) + "\n");
  gm::testing::CaptureResult found =
      run_capture({"ssh-keygen", "-F", "[127.0.0.1]:2200", "-f", file.string()});
  EXPECT_EQ(found.status, 0) << found.out << found.err;
}

}  // namespace
}  // namespace gm::ssh
