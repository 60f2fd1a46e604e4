// Test support for verbs run through the real binary: a loopback sshd registered as a generic
// machine in a temporary GPUMACHINE_HOME, a temporary HOME for the local side (its
// ~/.ssh/known_hosts and ~/.ssh/config) and one for the remote login, and small loopback TCP
// and HTTP clients.
#pragma once

#include "support/process.h"
#include "support/sshd.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace gm::testing {

/// A generic machine "gpu1" backed by a fresh SshdFixture. The remote login's HOME is a
/// temporary directory (authorized_keys environment=), so servers the verbs start there keep
/// their state out of the real home.
class CliMachine {
 public:
  /// remote_path: the PATH of sessions on the "machine" (empty: sshd's default), e.g. to put
  /// stand-ins for remote tools first.
  explicit CliMachine(std::string name = "gpu1", const std::string& remote_path = "")
      : m_name(std::move(name)) {
    SshdOptions options;
    options.key_options = "environment=\"HOME=" + m_remote_home.path().string() + "\"";
    if (!remote_path.empty()) {
      options.key_options += ",environment=\"PATH=" + remote_path + "\"";
    }
    m_sshd = std::make_unique<SshdFixture>(options);
    std::filesystem::create_directories(m_user_home.path() / ".ssh");
    CaptureResult r = gm({"create", "--driver", "generic", "--generic-ip-address", "127.0.0.1",
                          "--generic-ssh-port", std::to_string(m_sshd->port()),
                          "--generic-ssh-user", m_sshd->user(), "--generic-ssh-key",
                          m_sshd->client_key_path().string(), "--no-provision", m_name});
    if (r.status != 0) {
      throw std::runtime_error("create failed: " + r.err);
    }
  }

  const std::string& name() const { return m_name; }
  SshdFixture& sshd() { return *m_sshd; }
  const std::filesystem::path& home() const { return m_home.path(); }
  const std::filesystem::path& user_home() const { return m_user_home.path(); }
  const std::filesystem::path& remote_home() const { return m_remote_home.path(); }

  /// The environment every gpumachine subprocess gets.
  std::map<std::string, std::string> env() const {
    return {{"GPUMACHINE_HOME", m_home.path().string()},
            {"HOME", m_user_home.path().string()},
            {"NO_COLOR", "1"}};
  }
  SpawnOptions spawn(const std::filesystem::path& out, const std::filesystem::path& err) const {
    SpawnOptions o;
    o.env = env();
    o.stdout_path = out;
    o.stderr_path = err;
    return o;
  }
  /// Runs the binary to completion.
  CaptureResult gm(std::vector<std::string> args) const {
    args.insert(args.begin(), GM_BINARY_PATH);
    SpawnOptions o;
    o.env = env();
    return run_capture(args, {}, o);
  }
  /// Starts the binary in the background with stdout/stderr in files under dir.
  std::unique_ptr<Process> gm_spawn(std::vector<std::string> args, const TempDir& dir,
                                    const std::string& tag) const {
    args.insert(args.begin(), GM_BINARY_PATH);
    return std::make_unique<Process>(args, spawn(dir / (tag + ".out"), dir / (tag + ".err")));
  }

  /// Ends every per-connection sshd process (the listener's children), as a reboot or a
  /// network drop would, then restarts the listener.
  void drop_connections_and_restart_sshd() {
    int listener = std::stoi(read_text(m_sshd->dir() / "sshd.pid"));
    for (int pid : children_of(listener)) {
      ::kill(pid, SIGKILL);
    }
    m_sshd->restart();
  }

  /// /proc/PID/NAME, or empty once the process is gone (it may exit between a listing of /proc
  /// and this read, and a read of a dead process's file fails with ESRCH).
  static std::string proc_file(int pid, const char* name) {
    std::string path = "/proc/" + std::to_string(pid) + "/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::string text;
    if (fd < 0) {
      return text;
    }
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
      text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return n < 0 ? std::string() : text;
  }

  static std::vector<int> children_of(int parent) {
    std::vector<int> out;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::string pid = entry.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      std::string text = proc_file(std::stoi(pid), "stat");
      std::size_t close = text.rfind(')');
      if (close == std::string::npos) {
        continue;
      }
      std::istringstream rest(text.substr(close + 1));
      std::string state;
      int ppid = 0;
      rest >> state >> ppid;
      if (ppid == parent) {
        out.push_back(std::stoi(pid));
      }
    }
    return out;
  }

 private:
  std::string m_name;
  TempDir m_home{"gm-fwd-home"};
  TempDir m_user_home{"gm-fwd-user"};
  TempDir m_remote_home{"gm-fwd-remote"};
  std::unique_ptr<SshdFixture> m_sshd;
};

/// True while pid exists and is not a zombie (the init here may not reap orphans).
inline bool process_alive(int pid) {
  std::string text = CliMachine::proc_file(pid, "stat");
  std::size_t close = text.rfind(')');
  return close != std::string::npos && text.size() > close + 2 && text[close + 2] != 'Z' &&
         text[close + 2] != 'X';
}

/// Polls f every 50 ms until it is true or the deadline (a safety net, not an assertion).
template <typename F>
bool eventually(F&& f, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return f();
}

/// A connected loopback TCP socket (closed when destroyed), or fd -1.
class TcpClient {
 public:
  explicit TcpClient(int port) {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(m_fd);
      m_fd = -1;
    }
  }
  ~TcpClient() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;
  int fd() const { return m_fd; }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  /// Reads until EOF (or error, or limit seconds without data); nullopt on error or timeout.
  std::optional<std::string> read_to_eof(std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::string out;
    char buf[65536];
    while (true) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(limit.count() * 1000)) <= 0) {
        return std::nullopt;
      }
      ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
      if (n == 0) {
        return out;
      }
      if (n < 0) {
        return std::nullopt;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int m_fd = -1;
};

struct HttpReply {
  int status = 0;  ///< 0: no HTTP answer (connection refused or closed early)
  std::string body;
};

/// GET http://127.0.0.1:port/target with HTTP/1.0 (the server closes after answering).
inline HttpReply http_get(int port, const std::string& target) {
  TcpClient c(port);
  HttpReply reply;
  if (c.fd() < 0 || !c.send_all("GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1:" +
                                std::to_string(port) + "\r\n\r\n")) {
    return reply;
  }
  std::optional<std::string> raw = c.read_to_eof();
  if (!raw || raw->rfind("HTTP/", 0) != 0) {
    return reply;
  }
  reply.status = std::atoi(raw->substr(raw->find(' ') + 1, 3).c_str());
  std::size_t body = raw->find("\r\n\r\n");
  reply.body = body == std::string::npos ? "" : raw->substr(body + 4);
  return reply;
}

/// The first line of a file that starts with prefix, once it appears.
inline std::string wait_for_line(const std::filesystem::path& file, const std::string& prefix,
                                 std::chrono::seconds limit = std::chrono::seconds(120)) {
  std::string found;
  eventually(
      [&] {
        std::ifstream in(file);
        std::string line;
        while (std::getline(in, line)) {
          if (line.rfind(prefix, 0) == 0) {
            found = line;
            return true;
          }
        }
        return false;
      },
      limit);
  return found;
}

/// The Engine API's pull stream of an image as curl relays it (two layers, 5 MB in all), as
/// printf lines for a stand-in `curl` on the "machine": no registry can be reached here.
constexpr const char* k_engine_pull_stream = R"(
printf '{"status":"Pulling from image","id":"latest"}\r\n'
printf '{"status":"Pulling fs layer","progressDetail":{},"id":"l1"}\r\n'
printf '{"status":"Downloading","progressDetail":{"current":1000000,"total":3000000},"id":"l1"}\r\n'
printf '{"status":"Downloading","progressDetail":{"current":500000,"total":2000000},"id":"l2"}\r\n'
printf '{"status":"Download complete","progressDetail":{},"id":"l1"}\r\n'
printf '{"status":"Download complete","progressDetail":{},"id":"l2"}\r\n'
printf '{"status":"Pull complete","progressDetail":{},"id":"l1"}\r\n'
)";

}  // namespace gm::testing
