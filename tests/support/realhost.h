// Test support: the real test host. A Debian root filesystem
// (tests/support/realhost/build-image.sh, cached) booted with systemd-nspawn: real systemd as PID
// 1, real sshd on 127.0.0.1 and a free port, real apt/dpkg, real cloud-init with an optional
// NoCloud seed. Each RealHost gets its own writable copy (an overlayfs over the cached image) and
// removes it again; nspawn is ended by pid. Plus a signed apt repository on loopback with stand-in
// packages. See tests/support/realhost/README.md.
#pragma once

#include "gm/machine.h"
#include "ssh/remote_shell.h"
#include "support/process.h"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gm::ssh {
class Session;
}

namespace gm::testing {

/// The cached image, or why it cannot be used here (not root, no systemd-nspawn, not built yet).
struct RealHostImage {
  std::filesystem::path root;
  std::string unavailable;  ///< Empty when root can be booted.
};
RealHostImage realhost_image();

/// Skips the test (or fails it when GM_REALHOST_REQUIRED=1, as scripts/test.sh sets) when the
/// real test host cannot run here.
#define GM_REQUIRE_REALHOST()                                                       \
  do {                                                                              \
    const ::gm::testing::RealHostImage gm_image_ = ::gm::testing::realhost_image(); \
    if (!gm_image_.unavailable.empty()) {                                           \
      if (::gm::testing::realhost_required()) {                                     \
        FAIL() << "real test host: " << gm_image_.unavailable;                      \
      }                                                                             \
      GTEST_SKIP() << "real test host: " << gm_image_.unavailable;                  \
    }                                                                               \
  } while (false)
bool realhost_required();

struct RealHostOptions {
  /// NoCloud seed (/var/lib/cloud/seed/nocloud/user-data and meta-data); no seed when unset, so
  /// cloud-init finds only the None datasource.
  std::optional<std::string> user_data;
  std::string meta_data = "instance-id: gm-realhost\nlocal-hostname: gm-realhost\n";
  /// /etc/cloud/cloud-init.disabled: cloud-init is installed but never runs (a generic host).
  bool cloud_init_disabled = false;
  /// Units masked before boot (linked to /dev/null in /etc/systemd/system).
  std::vector<std::string> masked_units;
  /// Files written into the host's root before boot (path inside the host -> content).
  std::map<std::string, std::string> files;
  /// Extra systemd-nspawn arguments ("--tmpfs=/sys/firmware", "--bind-ro=SRC:DEST").
  std::vector<std::string> nspawn_args;
};

/// A booted real host. The login user is "admin" (passwordless sudo), authorized with the
/// fixture's own client key; its host key is the image's (or the one cloud-init installed).
class RealHost {
 public:
  /// Mounts the overlay, writes the seed and sshd's listen address, boots, and returns once sshd
  /// answers. Throws std::runtime_error with the console log when the host does not come up.
  explicit RealHost(RealHostOptions options = {});
  /// Powers off (SIGTERM to nspawn: an orderly shutdown), checks no process is left in the
  /// root, unmounts and removes the copy.
  ~RealHost();
  RealHost(const RealHost&) = delete;
  RealHost& operator=(const RealHost&) = delete;

  /// The host's root as seen from the test machine (read and write files here).
  const std::filesystem::path& root() const { return m_root; }
  /// sshd's port on 127.0.0.1.
  int port() const { return m_port; }
  /// 127.0.0.1, port, admin, the client key and the host key sshd shows now.
  SshTarget target() const;
  /// A session to the host, the host key pinned.
  std::unique_ptr<ssh::Session> connect() const;
  /// Runs a command in the host as root (sudo over SSH) and collects its output.
  ssh::ExecResult run_root(const std::string& command, std::string_view stdin_data = {}) const;
  /// `systemctl is-system-running --wait`: "running" or "degraded" (with the failed units).
  std::string wait_until_running() const;
  /// nspawn's console output so far (systemd's boot messages).
  std::string console() const;

 private:
  void boot(const std::vector<std::string>& nspawn_args);
  void shut_down();

  TempDir m_dir{"gm-realhost"};
  std::filesystem::path m_root;
  int m_port = 0;
  bool m_mounted = false;
  std::unique_ptr<Process> m_nspawn;
};

/// A stand-in .deb (tests/support/realhost/apt-repo.sh deb): its maintainer scripts only append
/// "NAME SCRIPT ARGS" to /var/log/gm-standin.log in the host.
struct StandinDeb {
  std::string name;
  std::string version;
  std::string depends;
  std::string provides;
  std::string conflicts;
  std::string arch = "all";
  /// Path inside the package -> content (written with mode 0755).
  std::map<std::string, std::string> files;
  bool fail_postinst = false;
};
/// Builds the .deb into dir and returns its path.
std::filesystem::path build_standin_deb(const StandinDeb& deb, const std::filesystem::path& dir);

/// A directory served over HTTP on 127.0.0.1 (python3 -m http.server, ended by pid).
class LoopbackHttpServer {
 public:
  /// Serves dir; returns once the port accepts. log receives the server's output.
  LoopbackHttpServer(const std::filesystem::path& dir, const std::filesystem::path& log);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;
  /// http://127.0.0.1:PORT
  std::string url() const;

 private:
  int m_port = 0;
  std::unique_ptr<Process> m_server;
};

/// A signed apt repository served on 127.0.0.1 (python3 -m http.server, ended by pid).
class LoopbackAptRepo {
 public:
  /// components: name ("main", "contrib") -> the stand-in packages in it.
  LoopbackAptRepo(std::string suite,
                  const std::map<std::string, std::vector<StandinDeb>>& components);
  ~LoopbackAptRepo();
  LoopbackAptRepo(const LoopbackAptRepo&) = delete;
  LoopbackAptRepo& operator=(const LoopbackAptRepo&) = delete;

  /// http://127.0.0.1:PORT
  std::string url() const;
  /// The public key as a binary keyring (for Signed-By).
  std::string keyring() const;
  /// A deb822 stanza for this repository, signed by keyring_path inside the host.
  std::string sources(const std::string& keyring_path,
                      const std::string& components = "main") const;
  /// Puts the keyring at /etc/apt/keyrings/NAME.gpg and the stanza at
  /// /etc/apt/sources.list.d/NAME.sources inside host's root.
  void install_into(const RealHost& host, const std::string& name,
                    const std::string& components = "main") const;

 private:
  std::string m_suite;
  TempDir m_dir{"gm-aptrepo"};
  std::unique_ptr<LoopbackHttpServer> m_server;
};

}  // namespace gm::testing
