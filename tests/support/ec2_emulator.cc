#include "support/ec2_emulator.h"

#include <string>

namespace gm::testing {

Ec2EmulatorFixture::Ec2EmulatorFixture(const nlohmann::json& config) {
  m_home = make_cli_homes(m_dir.path());
  int range = 0;
  m_range_lock = reserve_loopback_range(range);
  nlohmann::json defaults = {
      {"delays",
       {{"pending", 0.3},
        {"stopping", 0.3},
        {"stopping_force", 0.1},
        {"shutting_down", 0.3},
        {"reboot", 0.3}}},
      // Private addresses on loopback too (a cluster's MASTER_ADDR), past
      // the fixture's ip_pool of public ones.
      {"private_ip_pool", {{"first", "127." + std::to_string(range) + ".255.1"}}}};
  m_process = std::make_unique<EmulatorProcess>("ec2_emulator/ec2_emulator.py", defaults, config,
                                                range, m_dir.path(), "EC2 emulator");
}

Ec2EmulatorFixture::~Ec2EmulatorFixture() = default;

int Ec2EmulatorFixture::port() const {
  return m_process->port();
}

std::string Ec2EmulatorFixture::endpoint() const {
  return m_process->endpoint();
}

std::string Ec2EmulatorFixture::http(const std::string& method, const std::string& path,
                                     const std::string& body) {
  return m_process->http(method, path, body);
}

nlohmann::json Ec2EmulatorFixture::state() {
  return nlohmann::json::parse(http("GET", "/_emulator/state"));
}

nlohmann::json Ec2EmulatorFixture::calls(int since) {
  return nlohmann::json::parse(
      http("GET", "/_emulator/calls" + (since > 0 ? "?since=" + std::to_string(since) : "")));
}

int Ec2EmulatorFixture::count_calls(const std::string& action) {
  nlohmann::json all = calls();
  const nlohmann::json& list = all.is_array() ? all : all["calls"];
  int n = 0;
  for (const auto& c : list) {
    if (c.value("action", "") == action) {
      ++n;
    }
  }
  return n;
}

void Ec2EmulatorFixture::configure(const nlohmann::json& patch) {
  http("POST", "/_emulator/config", patch.dump());
}

void Ec2EmulatorFixture::fault(const nlohmann::json& faults) {
  http("POST", "/_emulator/faults", faults.dump());
}

void Ec2EmulatorFixture::clear_faults() {
  http("DELETE", "/_emulator/faults");
}

std::vector<nlohmann::json> Ec2EmulatorFixture::live_instances(const std::string& region) {
  std::vector<nlohmann::json> out;
  nlohmann::json s = state();
  if (!s["regions"].contains(region)) {
    return out;
  }
  for (const auto& [id, inst] : s["regions"][region]["instances"].items()) {
    if (inst.value("state", "") != "terminated") {
      out.push_back(inst);
    }
  }
  return out;
}

std::vector<std::string> Ec2EmulatorFixture::leaks(const std::string& region) {
  std::vector<std::string> out;
  nlohmann::json s = state();
  if (!s["regions"].contains(region)) {
    return out;
  }
  const nlohmann::json& r = s["regions"][region];
  for (const auto& [id, inst] : r["instances"].items()) {
    if (inst.value("state", "") != "terminated") {
      out.push_back("instance " + id + " " + inst.value("state", ""));
    }
  }
  for (const auto& [id, sg] : r["security_groups"].items()) {
    if (!sg.value("default", false)) {
      out.push_back("security-group " + id);
    }
  }
  for (const auto& [name, kp] : r["key_pairs"].items()) {
    out.push_back("key-pair " + name);
  }
  for (const auto& [id, vol] : r["volumes"].items()) {
    out.push_back("volume " + id + " " + vol.value("state", ""));
  }
  if (r.contains("placement_groups")) {
    for (const auto& [name, group] : r.at("placement_groups").items()) {
      out.push_back("placement-group " + name);
    }
  }
  return out;
}

std::map<std::string, std::string> Ec2EmulatorFixture::cli_env() const {
  return {
      {"GPUMACHINE_HOME", m_home.string()},
      {"HOME", (m_dir.path() / "home").string()},
      {"AWS_ACCESS_KEY_ID", k_emulator_key_id},
      {"AWS_SECRET_ACCESS_KEY", k_emulator_secret},
      {"AWS_SESSION_TOKEN", ""},
      {"AWS_PROFILE", ""},
      {"AWS_REGION", "us-east-1"},
      {"AWS_DEFAULT_REGION", "us-east-1"},
      {"AWS_ENDPOINT_URL", endpoint()},
      {"AWS_ENDPOINT_URL_EC2", endpoint()},
      {"AWS_ENDPOINT_URL_SSM", endpoint()},
      {"AWS_ENDPOINT_URL_STS", endpoint()},
      {"AWS_SHARED_CREDENTIALS_FILE", (m_dir.path() / "home" / "no-credentials").string()},
      {"AWS_CONFIG_FILE", (m_dir.path() / "home" / "no-config").string()},
      {"AWS_EC2_METADATA_DISABLED", "true"},
      {"AWS_MAX_ATTEMPTS", "3"},
      {"GPUMACHINE_CALLER_IP", "127.0.0.1"},
      // The emulator's consistency_delay is 0 unless a test sets it (and this with it): rm's
      // look for a launch whose answer never came need not wait EC2's minutes here.
      {"GPUMACHINE_EC2_CONSISTENCY_WINDOW", "3s"},
      {"GPUMACHINE_FORMAT", "table"},
      {"NO_COLOR", "1"},
  };
}

CaptureResult Ec2EmulatorFixture::gm(const std::vector<std::string>& args,
                                     const std::map<std::string, std::string>& extra_env,
                                     const std::filesystem::path& cwd) {
  return run_gm(cli_env(), extra_env, args, cwd);
}

std::unique_ptr<Process> Ec2EmulatorFixture::gm_async(
    const std::vector<std::string>& args, const std::map<std::string, std::string>& extra_env) {
  return start_gm(cli_env(), extra_env, args, m_dir.path());
}

}  // namespace gm::testing
