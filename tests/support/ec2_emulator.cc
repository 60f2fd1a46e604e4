#include "support/ec2_emulator.h"

#include "http/curl_transport.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#ifndef GM_SOURCE_DIR
#error "GM_SOURCE_DIR must be defined"
#endif

namespace gm::testing {

namespace {

std::string current_user() {
  struct passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

/// Reserves a /16 of loopback (127.N.0.0/16) for as long as the returned socket lives: the lock
/// is an abstract unix socket named after N, so parallel test processes never hand out the same
/// instance address (a shared address would let one test's sshd or tunnel count as another's
/// activity), and the kernel lets go of it when the process dies.
util::Fd reserve_loopback_range(int& second) {
  const unsigned start = static_cast<unsigned>(::getpid()) * 7u;
  for (unsigned i = 0; i < 240; ++i) {
    const int n = 2 + static_cast<int>((start + i) % 240u);
    util::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string name = "gm-test-loopback-" + std::to_string(n);
    std::memcpy(addr.sun_path + 1, name.data(), name.size());  // sun_path[0] == 0: abstract
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (fd.get() >= 0 && ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
      second = n;
      return fd;
    }
    if (errno != EADDRINUSE) {
      throw std::runtime_error("cannot reserve a loopback range for an EC2 emulator: " +
                               std::string(std::strerror(errno)));
    }
  }
  throw std::runtime_error("no free 127.N.0.0/16 for an EC2 emulator: 240 fixtures are running");
}

}  // namespace

Ec2EmulatorFixture::Ec2EmulatorFixture(const nlohmann::json& config) {
  m_home = m_dir.path() / "gmhome";
  std::filesystem::create_directories(m_dir.path() / "home");
  // Emulated instances log in to this very machine: never provision them (defaults file, so a
  // test that forgets the flag cannot install packages here).
  std::filesystem::create_directories(m_home);
  std::filesystem::permissions(m_home, std::filesystem::perms::owner_all);
  write_text(m_home / "config.yaml", "no-provision: true\n");
  int second = 0;
  m_range_lock = reserve_loopback_range(second);
  const std::string base = "127." + std::to_string(second) + ".";
  nlohmann::json cfg = {
      {"delays",
       {{"pending", 0.3},
        {"stopping", 0.3},
        {"stopping_force", 0.1},
        {"shutting_down", 0.3},
        {"reboot", 0.3}}},
      {"ip_pool", {{"first", base + "1.1"}, {"last", base + "254.254"}}},
      {"login_user", current_user()},
  };
  cfg.merge_patch(config);
  write_text(m_dir.path() / "config.json", cfg.dump());
  SpawnOptions options;
  options.stdout_path = m_dir.path() / "emulator.out";
  options.stderr_path = m_dir.path() / "emulator.err";
  m_process = std::make_unique<Process>(
      std::vector<std::string>{"python3",
                               std::string(GM_SOURCE_DIR) + "/tools/ec2_emulator/ec2_emulator.py",
                               "--state-dir", (m_dir.path() / "state").string(), "--port", "0",
                               "--config", (m_dir.path() / "config.json").string()},
      options);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(m_dir.path() / "emulator.out");
    std::string word;
    while (in >> word) {
      if (word == "READY" && (in >> m_port)) {
        return;
      }
    }
    if (!m_process->is_running()) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string err;
  try {
    err = read_text(m_dir.path() / "emulator.err");
  } catch (...) {
  }
  m_process->stop();
  throw std::runtime_error("the EC2 emulator did not start: " + err);
}

Ec2EmulatorFixture::~Ec2EmulatorFixture() {
  try {
    http("POST", "/_emulator/shutdown");
  } catch (...) {
  }
  if (m_process) {
    m_process->stop(std::chrono::milliseconds(5000));
  }
}

std::string Ec2EmulatorFixture::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

std::string Ec2EmulatorFixture::http(const std::string& method, const std::string& path,
                                     const std::string& body) {
  http::CurlTransport transport;
  http::Request request;
  request.method = method;
  request.url = endpoint() + path;
  request.body = body;
  if (!body.empty()) {
    request.headers.push_back({"Content-Type", "application/json"});
  }
  request.timeout = std::chrono::seconds(20);
  http::Response response = transport.send(request);
  if (response.status >= 300) {
    throw std::runtime_error("emulator " + method + " " + path + ": HTTP " +
                             std::to_string(response.status) + " " + response.body);
  }
  return response.body;
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
  SpawnOptions options;
  options.cwd = cwd;
  options.env = cli_env();
  for (const auto& [k, v] : extra_env) {
    options.env[k] = v;
  }
  std::vector<std::string> argv = {GM_BINARY_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_capture(argv, {}, options);
}

std::unique_ptr<Process> Ec2EmulatorFixture::gm_async(
    const std::vector<std::string>& args, const std::map<std::string, std::string>& extra_env) {
  SpawnOptions options;
  options.env = cli_env();
  for (const auto& [k, v] : extra_env) {
    options.env[k] = v;
  }
  options.stdout_path = m_dir.path() / "async.out";
  options.stderr_path = m_dir.path() / "async.err";
  std::vector<std::string> argv = {GM_BINARY_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(argv, options);
}

}  // namespace gm::testing
