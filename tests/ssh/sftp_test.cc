#include "gm/error.h"
#include "ssh/session.h"
#include "support/process.h"
#include "support/sshd.h"
#include "util/crypto.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <set>

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

// Buffers are sized to each file and reading stops at the listed size: every size around the
// edges (libssh2's 30000-byte requests, the 1 MiB read cap, its 4x read-ahead) arrives whole.
TEST_F(SshSftp, FilesOfExactSizesRoundTripBothWays) {
  const std::vector<std::size_t> sizes = {
      0, 1, 4095, 4096, 4097, 29999, 30000, 30001, 120001, 1 << 20, (1 << 20) + 1, (4 << 20) + 3};
  std::filesystem::path tree = m_local / "sizes";
  std::filesystem::create_directories(tree);
  for (std::size_t size : sizes) {
    write_text(tree / std::to_string(size), gm::util::random_bytes(size), 0640);
  }
  std::string remote = (m_remote / "sizes").string();
  m_session->upload_path(tree, remote, true);
  std::filesystem::path back = m_local / "back";
  m_session->download_path(remote, back, true);
  for (std::size_t size : sizes) {
    std::string name = std::to_string(size);
    EXPECT_EQ(std::filesystem::file_size(std::filesystem::path(remote) / name), size);
    EXPECT_EQ(std::filesystem::file_size(back / name), size);
    EXPECT_EQ(checksum(back / name), checksum(tree / name)) << name;
    EXPECT_EQ(mode_of(back / name), 0640u) << name;
    // One file on its own, the top level (its size from a stat, not a listing).
    m_session->download_path((std::filesystem::path(remote) / name).string(), m_local / name,
                             false);
    EXPECT_EQ(checksum(m_local / name), checksum(tree / name)) << name;
  }
}

// A file whose listed size is 0 but that has content (as /proc files do) is read to its end.
TEST_F(SshSftp, FileListedAsEmptyIsReadToItsEnd) {
  m_session->download_path("/proc/self/status", m_local / "status", false);
  EXPECT_NE(read_text(m_local / "status").find("Name:"), std::string::npos);
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

// A link to its own parent would make a recursive download descend forever (until the server
// gives up with ELOOP); links to directories are skipped, links to files copied as files.
TEST_F(SshSftp, RecursiveDownloadSkipsLinksToDirectoriesAndCopiesLinkedFiles) {
  std::filesystem::path tree = m_remote / "tree";
  std::filesystem::create_directories(tree / "sub");
  std::filesystem::create_directories(m_remote / "outside_dir");
  write_text(tree / "a.txt", "alpha\n", 0644);
  write_text(m_remote / "outside.txt", "outside\n", 0644);
  write_text(m_remote / "outside_dir" / "other", "other\n", 0644);
  std::filesystem::create_directory_symlink("..", tree / "sub" / "loop");
  std::filesystem::create_directory_symlink(m_remote / "outside_dir", tree / "dirlink");
  std::filesystem::create_symlink(m_remote / "outside.txt", tree / "filelink");

  std::filesystem::path back = m_local / "back";
  m_session->download_path(tree.string(), back, true);
  EXPECT_EQ(read_text(back / "a.txt"), "alpha\n");
  EXPECT_FALSE(std::filesystem::is_symlink(back / "filelink"));
  EXPECT_EQ(read_text(back / "filelink"), "outside\n");
  EXPECT_TRUE(std::filesystem::is_directory(back / "sub"));
  EXPECT_FALSE(std::filesystem::exists(back / "sub" / "loop"));
  EXPECT_FALSE(std::filesystem::exists(back / "dirlink"));
}

/// Every path under \a root, relative to it.
std::set<std::string> tree_of(const std::filesystem::path& root) {
  std::set<std::string> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    out.insert(std::filesystem::relative(entry.path(), root).string());
  }
  return out;
}

// A host whose SFTP server lists names with "/", ".." or an absolute path (a real sshd running
// tests/support/lying_sftp.py as its sftp subsystem) cannot make a download write outside the
// destination; the honest entries still arrive.
TEST(SshSftpHostile, RecursiveDownloadNeverWritesOutsideTheDestination) {
  TempDir scratch{"gm-sftp-hostile"};
  const std::filesystem::path dest = scratch.path() / "a" / "b" / "dest";
  std::filesystem::create_directories(dest.parent_path());
  const std::string absolute = (scratch.path() / "absolute").string();
  nlohmann::json tree = {
      {"/src",
       {{"dir", {"ok.txt", "../escaped", "../../../up", absolute, ".", "..", "sub/inner"}}}},
      {"/src/ok.txt", {{"file", "fine\n"}}},
      {"/src/../escaped", {{"file", "escaped\n"}}},
      {"/src/../../../up", {{"file", "up\n"}}},
      {"/src/" + absolute, {{"file", "absolute\n"}}},  // join("/src", "/tmp/...")
      {"/src/sub/inner", {{"file", "inner\n"}}},
  };
  write_text(scratch.path() / "tree.json", tree.dump());
  gm::testing::SshdOptions options;
  options.sftp_subsystem = "/usr/bin/python3 " + std::string(GM_SOURCE_DIR) +
                           "/tests/support/lying_sftp.py " +
                           (scratch.path() / "tree.json").string();
  SshdFixture sshd(options);
  ConnectOptions connect;
  connect.target = sshd.target();
  std::unique_ptr<Session> session = Session::connect(connect);

  session->download_path("/src", dest, true);
  EXPECT_EQ(read_text(dest / "ok.txt"), "fine\n");
  EXPECT_EQ(tree_of(scratch.path()),
            (std::set<std::string>{"tree.json", "a", "a/b", "a/b/dest", "a/b/dest/ok.txt"}));
}

}  // namespace
}  // namespace gm::ssh
