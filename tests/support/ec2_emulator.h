// Test support: the EC2 emulator (tools/ec2_emulator) as a child process on loopback with its own
// state directory and its own range of 127.x instance addresses, its control API, and a runner
// for the real gpumachine binary pointed at it (temp GPUMACHINE_HOME and HOME, emulator
// credentials, GPUMACHINE_CALLER_IP, IMDS off, stdin from /dev/null).
#pragma once

#include "support/emulator_process.h"
#include "support/process.h"
#include "util/fd.h"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gm::testing {

class Ec2EmulatorFixture {
 public:
  /// Starts the emulator with \a config merged over fast test defaults (short state delays,
  /// this fixture's ip_pool, login_user = the current user). Throws when it does not get READY.
  explicit Ec2EmulatorFixture(const nlohmann::json& config = nlohmann::json::object());
  /// POST /_emulator/shutdown, then stops the process by pid.
  ~Ec2EmulatorFixture();
  Ec2EmulatorFixture(const Ec2EmulatorFixture&) = delete;
  Ec2EmulatorFixture& operator=(const Ec2EmulatorFixture&) = delete;

  int port() const;
  /// "http://127.0.0.1:<port>".
  std::string endpoint() const;

  /// GET /_emulator/state.
  nlohmann::json state();
  /// GET /_emulator/calls (every call since start, or since \a since).
  nlohmann::json calls(int since = 0);
  /// Names of the calls, in order (e.g. to count RunInstances).
  int count_calls(const std::string& action);
  /// POST /_emulator/config (deep merge).
  void configure(const nlohmann::json& patch);
  /// POST /_emulator/faults (one or a list).
  void fault(const nlohmann::json& faults);
  /// DELETE /_emulator/faults.
  void clear_faults();

  /// Instances of \a region that are not terminated.
  std::vector<nlohmann::json> live_instances(const std::string& region = "us-east-1");
  /// Everything a machine could leak in \a region, as "kind id" lines: live instances,
  /// non-default security groups, key pairs and volumes. Empty means nothing leaked.
  std::vector<std::string> leaks(const std::string& region = "us-east-1");

  /// The gpumachine home for CLI runs.
  const std::filesystem::path& home() const { return m_home; }
  /// Environment for the CLI: GPUMACHINE_HOME, HOME, AWS_* pointing at this emulator.
  std::map<std::string, std::string> cli_env() const;
  /// Runs the real binary with \a args (env = cli_env() overlaid with \a extra_env).
  CaptureResult gm(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& extra_env = {},
                   const std::filesystem::path& cwd = {});
  /// Starts the binary without waiting (for kill tests); stdout/stderr go to files in the dir.
  std::unique_ptr<Process> gm_async(const std::vector<std::string>& args,
                                    const std::map<std::string, std::string>& extra_env = {});

  /// The fixture's temp directory.
  const std::filesystem::path& dir() const { return m_dir.path(); }

 private:
  std::string http(const std::string& method, const std::string& path,
                   const std::string& body = {});

  util::Fd m_range_lock;  // this fixture's 127.N.0.0/16, held until the emulator is gone
  TempDir m_dir{"gm-ec2emu"};
  std::filesystem::path m_home;
  std::unique_ptr<EmulatorProcess> m_process;
};

/// The default credentials the emulator accepts.
inline constexpr const char* k_emulator_key_id = "AKIDEXAMPLE";
inline constexpr const char* k_emulator_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

}  // namespace gm::testing
