// Test support: the DigitalOcean emulator (tools/do_emulator) as a child process on loopback with
// its own state directory and 127.x range, its control API, and a runner for the real gpumachine
// binary pointed at it (temp GPUMACHINE_HOME and HOME, the emulator's token,
// DIGITALOCEAN_API_URL, GPUMACHINE_CALLER_IP).
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

/// The token the emulator accepts by default.
inline constexpr const char* k_do_emulator_token =
    "dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

class DoEmulatorFixture {
 public:
  /// Starts the emulator with \a config merged over fast test defaults.
  explicit DoEmulatorFixture(const nlohmann::json& config = nlohmann::json::object());

  std::string endpoint() const { return m_process->endpoint(); }
  /// GET /_emulator/state.
  nlohmann::json state();
  /// GET /_emulator/calls: the list.
  nlohmann::json calls();
  /// Calls of \a method on paths starting with \a path.
  int count_calls(const std::string& method, const std::string& path);
  void configure(const nlohmann::json& patch);
  void fault(const nlohmann::json& faults);

  /// What a machine could leak, as "kind id" lines: droplets, SSH keys, firewalls.
  std::vector<std::string> leaks();

  const std::filesystem::path& home() const { return m_home; }
  const std::filesystem::path& dir() const { return m_dir.path(); }
  std::map<std::string, std::string> cli_env() const;
  CaptureResult gm(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& extra_env = {});
  std::unique_ptr<Process> gm_async(const std::vector<std::string>& args,
                                    const std::map<std::string, std::string>& extra_env = {});

 private:
  util::Fd m_range_lock;  // this fixture's 127.N.0.0/16, held until the emulator is gone
  TempDir m_dir{"gm-doemu"};
  std::filesystem::path m_home;
  std::unique_ptr<EmulatorProcess> m_process;
};

}  // namespace gm::testing
