#include "support/do_emulator.h"

namespace gm::testing {

DoEmulatorFixture::DoEmulatorFixture(const nlohmann::json& config) {
  m_home = make_cli_homes(m_dir.path());
  int range = 0;
  m_range_lock = reserve_loopback_range(range);
  nlohmann::json defaults = {{"delays",
                              {{"create", 0.3},
                               {"action", 0.2},
                               {"status_lag", 0.1},
                               {"delete_linger", 0.3},
                               {"firewall", 0.2}}}};
  m_process = std::make_unique<EmulatorProcess>("do_emulator/do_emulator.py", defaults, config,
                                                range, m_dir.path(), "DigitalOcean emulator");
}

nlohmann::json DoEmulatorFixture::state() {
  return nlohmann::json::parse(m_process->http("GET", "/_emulator/state"));
}

nlohmann::json DoEmulatorFixture::calls() {
  return nlohmann::json::parse(m_process->http("GET", "/_emulator/calls"))["calls"];
}

int DoEmulatorFixture::count_calls(const std::string& method, const std::string& path) {
  int n = 0;
  for (const auto& c : calls()) {
    if (c.value("method", "") == method && c.value("path", "").starts_with(path)) {
      ++n;
    }
  }
  return n;
}

void DoEmulatorFixture::configure(const nlohmann::json& patch) {
  m_process->http("POST", "/_emulator/config", patch.dump());
}

void DoEmulatorFixture::fault(const nlohmann::json& faults) {
  m_process->http("POST", "/_emulator/faults", faults.dump());
}

std::vector<std::string> DoEmulatorFixture::leaks() {
  std::vector<std::string> out;
  nlohmann::json s = state();
  for (const auto& [id, d] : s["droplets"].items()) {
    if (d["deleted_at"].is_null()) {
      out.push_back("droplet " + id + " " + d.value("status", ""));
    }
  }
  for (const auto& [id, k] : s["keys"].items()) {
    out.push_back("ssh-key " + id + " " + k.value("name", ""));
  }
  for (const auto& [id, f] : s["firewalls"].items()) {
    out.push_back("firewall " + id + " " + f.value("name", ""));
  }
  return out;
}

std::map<std::string, std::string> DoEmulatorFixture::cli_env() const {
  return {
      {"GPUMACHINE_HOME", m_home.string()},
      {"HOME", (m_dir.path() / "home").string()},
      {"XDG_CONFIG_HOME", (m_dir.path() / "home" / ".config").string()},
      {"DIGITALOCEAN_ACCESS_TOKEN", k_do_emulator_token},
      {"DIGITALOCEAN_API_URL", endpoint()},
      {"GPUMACHINE_CALLER_IP", "127.0.0.1"},
      {"GPUMACHINE_FORMAT", "table"},
      {"NO_COLOR", "1"},
  };
}

CaptureResult DoEmulatorFixture::gm(const std::vector<std::string>& args,
                                    const std::map<std::string, std::string>& extra_env) {
  return run_gm(cli_env(), extra_env, args);
}

std::unique_ptr<Process> DoEmulatorFixture::gm_async(
    const std::vector<std::string>& args, const std::map<std::string, std::string>& extra_env) {
  return start_gm(cli_env(), extra_env, args, m_dir.path());
}

}  // namespace gm::testing
