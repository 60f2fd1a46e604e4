#include "gm/error.h"
#include "ssh/session.h"
#include "support/process.h"
#include "support/sshd.h"
#include "util/crypto.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

namespace gm::ssh {
namespace {

using gm::testing::read_text;
using gm::testing::SshdFixture;
using gm::testing::TempDir;
using gm::testing::write_text;

unsigned mode_of(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string checksum(const std::filesystem::path& path) {
  return gm::util::hex(gm::util::sha256(read_text(path)));
}

class SshSftp : public ::testing::Test {
 protected:
  void SetUp() override {
    ConnectOptions options;
    options.target = m_sshd.target();
    m_session = Session::connect(options);
  }
  SshdFixture m_sshd;
  TempDir m_local{"gm-sftp-local"};
  TempDir m_remote{"gm-sftp-remote"};  // the "remote" side is this machine, through sshd
  std::unique_ptr<Session> m_session;
};

TEST_F(SshSftp, TenMegabyteFileBothWaysKeepsContentAndMode) {
  std::filesystem::path source = m_local / "random.bin";
  // Not a multiple of any buffer size, so the last partial chunk is exercised.
  write_text(source, gm::util::random_bytes(10 * 1024 * 1024 + 12345), 0640);
  std::string remote = (m_remote / "random.bin").string();
  m_session->upload_path(source, remote, false);
  EXPECT_EQ(checksum(remote), checksum(source));
  EXPECT_EQ(mode_of(remote), 0640u);

  std::filesystem::path back = m_local / "back.bin";
  std::filesystem::permissions(remote, std::filesystem::perms(0604));
  m_session->download_path(remote, back, false);
  EXPECT_EQ(checksum(back), checksum(source));
  EXPECT_EQ(mode_of(back), 0604u);

  // Replacing a longer file with a shorter one truncates it.
  write_text(source, "tiny", 0600);
  m_session->upload_path(source, remote, false);
  EXPECT_EQ(read_text(remote), "tiny");
  EXPECT_EQ(mode_of(remote), 0600u);
}

TEST_F(SshSftp, EmptyFile) {
  write_text(m_local / "empty", "", 0644);
  m_session->upload_path(m_local / "empty", (m_remote / "empty").string(), false);
  EXPECT_EQ(read_text(m_remote / "empty"), "");
  m_session->download_path((m_remote / "empty").string(), m_local / "empty2", false);
  EXPECT_EQ(read_text(m_local / "empty2"), "");
}

TEST_F(SshSftp, RecursiveDirectoryCopyBothWays) {
  std::filesystem::path tree = m_local / "tree";
  std::filesystem::create_directories(tree / "sub" / "deeper");
  std::filesystem::create_directories(tree / "empty_dir");
  write_text(tree / "a.txt", "alpha\n", 0644);
  write_text(tree / "run.sh", "#!/bin/sh\n", 0755);
  write_text(tree / "sub" / "b.bin", gm::util::random_bytes(300000), 0600);
  write_text(tree / "sub" / "deeper" / "c", "c\n", 0444);
  std::filesystem::permissions(tree / "sub", std::filesystem::perms(0750));

  std::string remote = (m_remote / "copy").string();
  m_session->upload_path(tree, remote, true);
  std::filesystem::path r(remote);
  EXPECT_EQ(read_text(r / "a.txt"), "alpha\n");
  EXPECT_EQ(mode_of(r / "run.sh"), 0755u);
  EXPECT_EQ(checksum(r / "sub" / "b.bin"), checksum(tree / "sub" / "b.bin"));
  EXPECT_EQ(mode_of(r / "sub" / "b.bin"), 0600u);
  EXPECT_EQ(mode_of(r / "sub" / "deeper" / "c"), 0444u);
  EXPECT_EQ(mode_of(r / "sub"), 0750u);
  EXPECT_TRUE(std::filesystem::is_directory(r / "empty_dir"));

  std::filesystem::path back = m_local / "back";
  m_session->download_path(remote, back, true);
  EXPECT_EQ(read_text(back / "a.txt"), "alpha\n");
  EXPECT_EQ(mode_of(back / "run.sh"), 0755u);
  EXPECT_EQ(checksum(back / "sub" / "b.bin"), checksum(tree / "sub" / "b.bin"));
  EXPECT_EQ(mode_of(back / "sub" / "deeper" / "c"), 0444u);
  EXPECT_EQ(mode_of(back / "sub"), 0750u);
  EXPECT_TRUE(std::filesystem::is_directory(back / "empty_dir"));
}

TEST_F(SshSftp, DirectoryWithoutRecursiveAndMissingFilesFail) {
  std::filesystem::create_directories(m_local / "dir");
  try {
    m_session->upload_path(m_local / "dir", (m_remote / "dir").string(), false);
    FAIL() << "no error";
  } catch (const SshError& e) {
    EXPECT_EQ(e.stage(), SshError::Stage::sftp);
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos);
  }
  try {
    m_session->download_path((m_remote / "nope").string(), m_local / "nope", false);
    FAIL() << "no error";
  } catch (const SshError& e) {
    EXPECT_EQ(e.stage(), SshError::Stage::sftp);
    EXPECT_NE(std::string(e.what()).find("no such file"), std::string::npos) << e.what();
  }
  try {
    m_session->upload("/nonexistent-dir/x", "data");
    FAIL() << "no error";
  } catch (const SshError& e) {
    EXPECT_EQ(e.stage(), SshError::Stage::sftp);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x"), std::string::npos) << e.what();
  }
  // The session still works after SFTP errors.
  EXPECT_EQ(m_session->run("echo ok").out, "ok\n");
}

}  // namespace
}  // namespace gm::ssh
