// Test support shared by the cloud emulator fixtures (EC2, DigitalOcean): an emulator script as a
// child process on loopback that prints "READY <port>", its unauthenticated control API, and the
// per-fixture range of 127.x addresses its instances get.
#pragma once

#include "support/process.h"
#include "util/fd.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gm::testing {

/// The user running the tests (every emulated instance logs in as this user).
std::string current_user();

/// Reserves a /16 of loopback (127.N.0.0/16, N returned in \a second) for as long as the returned
/// socket lives (an abstract unix socket named after N), so parallel test processes never hand
/// out the same instance address; the kernel lets go of it when the process dies.
util::Fd reserve_loopback_range(int& second);

/// Makes \a dir/home (the CLI's HOME) and \a dir/gmhome (its GPUMACHINE_HOME, 0700, with
/// `no-provision: true` in config.yaml: emulated instances log in to this very machine, so a
/// test that forgets the flag still cannot install packages here). Returns the gmhome path.
std::filesystem::path make_cli_homes(const std::filesystem::path& dir);

/// Runs the real binary with \a args, environment \a env overlaid with \a extra_env, stdin
/// from /dev/null; waits for it.
CaptureResult run_gm(const std::map<std::string, std::string>& env,
                     const std::map<std::string, std::string>& extra_env,
                     const std::vector<std::string>& args, const std::filesystem::path& cwd = {});
/// The same without waiting (for kill tests); stdout/stderr go to \a dir/async.{out,err}.
std::unique_ptr<Process> start_gm(const std::map<std::string, std::string>& env,
                                  const std::map<std::string, std::string>& extra_env,
                                  const std::vector<std::string>& args,
                                  const std::filesystem::path& dir);

/// One emulator process: `python3 SCRIPT --state-dir DIR/state --port 0 --config DIR/config.json`.
class EmulatorProcess {
 public:
  /// Starts \a script (under tools/) with \a defaults, this fixture's address pool in \a range
  /// (127.<range>.0.0/16, from reserve_loopback_range()) and the current user as login user,
  /// and \a overrides merged over all that; throws (naming \a what) when it does not print READY.
  EmulatorProcess(const std::string& script, nlohmann::json defaults,
                  const nlohmann::json& overrides, int range, const std::filesystem::path& dir,
                  const std::string& what);
  /// POST /_emulator/shutdown, then stops the process by pid.
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  int port() const { return m_port; }
  /// "http://127.0.0.1:<port>".
  std::string endpoint() const;
  /// One plain HTTP call; throws on a status >= 300. Returns the body.
  std::string http(const std::string& method, const std::string& path,
                   const std::string& body = {}) const;

 private:
  std::unique_ptr<Process> m_process;
  int m_port = 0;
};

}  // namespace gm::testing
