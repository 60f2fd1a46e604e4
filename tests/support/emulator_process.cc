#include "support/emulator_process.h"

#include "http/curl_transport.h"

#ifndef GM_SOURCE_DIR
#error "GM_SOURCE_DIR must be defined"
#endif

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

namespace gm::testing {

std::string current_user() {
  struct passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr ? pw->pw_name : "root";
}

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
      throw std::runtime_error("cannot reserve a loopback range for an emulator: " +
                               std::string(std::strerror(errno)));
    }
  }
  throw std::runtime_error("no free 127.N.0.0/16 for an emulator: 240 fixtures are running");
}

std::filesystem::path make_cli_homes(const std::filesystem::path& dir) {
  std::filesystem::path home = dir / "gmhome";
  std::filesystem::create_directories(dir / "home");
  std::filesystem::create_directories(home);
  std::filesystem::permissions(home, std::filesystem::perms::owner_all);
  write_text(home / "config.yaml", "no-provision: true\n");
  return home;
}

CaptureResult run_gm(const std::map<std::string, std::string>& env,
                     const std::map<std::string, std::string>& extra_env,
                     const std::vector<std::string>& args, const std::filesystem::path& cwd) {
  SpawnOptions options;
  options.cwd = cwd;
  options.env = env;
  options.limit = std::chrono::seconds(240);  // under CTest's 300 s: a hang shows its output
  for (const auto& [k, v] : extra_env) {
    options.env[k] = v;
  }
  std::vector<std::string> argv = {GM_BINARY_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_capture(argv, {}, options);
}

std::unique_ptr<Process> start_gm(const std::map<std::string, std::string>& env,
                                  const std::map<std::string, std::string>& extra_env,
                                  const std::vector<std::string>& args,
                                  const std::filesystem::path& dir) {
  SpawnOptions options;
  options.env = env;
  for (const auto& [k, v] : extra_env) {
    options.env[k] = v;
  }
  options.stdout_path = dir / "async.out";
  options.stderr_path = dir / "async.err";
  std::vector<std::string> argv = {GM_BINARY_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(argv, options);
}

EmulatorProcess::EmulatorProcess(const std::string& script, nlohmann::json defaults,
                                 const nlohmann::json& overrides, int range,
                                 const std::filesystem::path& dir, const std::string& what) {
  const std::string base = "127." + std::to_string(range) + ".";
  defaults["ip_pool"] = {{"first", base + "1.1"}, {"last", base + "254.254"}};
  defaults["login_user"] = current_user();
  defaults.merge_patch(overrides);
  write_text(dir / "config.json", defaults.dump());
  SpawnOptions options;
  options.stdout_path = dir / "emulator.out";
  options.stderr_path = dir / "emulator.err";
  m_process = std::make_unique<Process>(
      std::vector<std::string>{"python3", std::string(GM_SOURCE_DIR) + "/tools/" + script,
                               "--state-dir", (dir / "state").string(), "--port", "0", "--config",
                               (dir / "config.json").string()},
      options);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(dir / "emulator.out");
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
    err = read_text(dir / "emulator.err");
  } catch (...) {
  }
  m_process->stop();
  throw std::runtime_error("the " + what + " did not start: " + err);
}

EmulatorProcess::~EmulatorProcess() {
  try {
    http("POST", "/_emulator/shutdown");
  } catch (...) {
  }
  if (m_process) {
    m_process->stop(std::chrono::milliseconds(5000));
  }
}

std::string EmulatorProcess::endpoint() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

std::string EmulatorProcess::http(const std::string& method, const std::string& path,
                                  const std::string& body) const {
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

}  // namespace gm::testing
