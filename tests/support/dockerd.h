// A real Docker daemon (Debian's docker.io) for the tests of `run`: its own --data-root,
// --exec-root, --pidfile and unix socket under a temporary folder, no bridge and no iptables
// rules (so it leaves nothing behind on the host), ended by its pid. No image can be pulled
// here, so it imports a tiny busybox-static image ("gm-busybox:test") made from /bin/busybox.
#pragma once

#include "support/process.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace gm::testing {

class DockerdFixture {
 public:
  /// Starts dockerd and imports the image; throws std::runtime_error (with dockerd's log) when
  /// it cannot. Use unavailable() first to skip where docker.io or busybox-static is missing.
  DockerdFixture();
  ~DockerdFixture();
  DockerdFixture(const DockerdFixture&) = delete;
  DockerdFixture& operator=(const DockerdFixture&) = delete;

  /// Why no daemon can run here (a missing package), or nullopt.
  static std::optional<std::string> unavailable();

  /// The daemon's unix socket.
  std::filesystem::path socket() const { return m_dir.path() / "docker.sock"; }
  /// A folder holding a `docker` that talks to this daemon: put it first on a session's PATH.
  std::filesystem::path client_dir() const { return m_dir.path() / "bin"; }
  /// Removes every container (running or not): each test starts with no jobs.
  void remove_containers() const;
  /// Runs /usr/bin/docker against this daemon.
  CaptureResult docker(std::vector<std::string> args) const;

  static constexpr const char* k_image = "gm-busybox:test";

 private:
  TempDir m_dir{"gm-dockerd"};
  std::unique_ptr<Process> m_daemon;
};

}  // namespace gm::testing
