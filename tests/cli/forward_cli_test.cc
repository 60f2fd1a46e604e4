// `gpumachine forward` end to end: the real binary, a generic machine on a loopback sshd, and
// loopback servers standing in for what runs on the machine.
#include "cli/machine_env.h"

#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <random>

namespace gm::testing {
namespace {

// Echoes every byte back and half-closes after the client's EOF: both directions at once.
constexpr const char* k_echo_server = R"(
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
def serve(c):
    while True:
        d = c.recv(262144)
        if not d:
            break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)";

// Sends argv[2] bytes of a repeating 0..255 pattern to each client, then closes.
constexpr const char* k_source_server = R"(
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
chunk = bytes(range(256)) * 4096
def serve(c, left):
    while left > 0:
        n = min(left, len(chunk))
        c.sendall(chunk[:n])
        left -= n
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c, int(sys.argv[2])), daemon=True).start()
)";

/// Resident memory of a process and its children (the OpenSSH master) in KiB.
long rss_kib(int pid) {
  long total = 0;
  std::vector<int> pids = CliMachine::children_of(pid);
  pids.push_back(pid);
  for (int p : pids) {
    std::string status = CliMachine::proc_file(p, "status");
    std::size_t at = status.find("VmRSS:");
    total += at == std::string::npos ? 0 : std::atol(status.c_str() + at + 6);
  }
  return total;
}

/// A process's argv.
/// The process's argv; empty once it is gone (it may exit between a listing and this read).
std::vector<std::string> cmdline_of(int pid) {
  std::string text = CliMachine::proc_file(pid, "cmdline");
  std::vector<std::string> argv;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\0', start);
    end = end == std::string::npos ? text.size() : end;
    argv.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return argv;
}

/// The OpenSSH master a forward runs: its child running `ssh` (0: none).
int ssh_child(int pid) {
  for (int child : CliMachine::children_of(pid)) {
    std::vector<std::string> argv = cmdline_of(child);
    if (!argv.empty() && std::filesystem::path(argv[0]).filename() == "ssh") {
      return child;
    }
  }
  return 0;
}

class ForwardCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { s_machine = new CliMachine(); }
  static void TearDownTestSuite() {
    delete s_machine;
    s_machine = nullptr;
  }

  /// A python server from the fixture dir, listening on a fresh loopback port.
  std::unique_ptr<Process> start_echo(int port) {
    write_text(m_dir / "echo.py", k_echo_server);
    auto p = std::make_unique<Process>(std::vector<std::string>{
        "/usr/bin/python3", (m_dir / "echo.py").string(), std::to_string(port)});
    eventually([&] { return port_accepts("127.0.0.1", port); });
    return p;
  }
  std::unique_ptr<Process> start_http(int port, const std::filesystem::path& root) {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/python3", "-m", "http.server", std::to_string(port),
                                 "--bind", "127.0.0.1", "--directory", root.string()},
        SpawnOptions{.stderr_path = m_dir / "http.log"});
    eventually([&] { return port_accepts("127.0.0.1", port); });
    return p;
  }
  /// Starts `gpumachine forward gpu1 SPEC` in the foreground; returns once it serves. client:
  /// GPUMACHINE_SSH_CLIENT (empty: the default, OpenSSH where installed).
  std::unique_ptr<Process> start_forward(const std::string& spec, const std::string& tag,
                                         const std::string& client = "") {
    SpawnOptions o = s_machine->spawn(m_dir / (tag + ".out"), m_dir / (tag + ".err"));
    if (!client.empty()) {
      o.env["GPUMACHINE_SSH_CLIENT"] = client;
    }
    auto p = std::make_unique<Process>(
        std::vector<std::string>{GM_BINARY_PATH, "forward", s_machine->name(), spec}, o);
    EXPECT_NE(wait_for_line(m_dir / (tag + ".out"), "forwarding "), "")
        << read_text(m_dir / (tag + ".err"));
    return p;
  }

  static CliMachine* s_machine;
  TempDir m_dir{"gm-fwd-test"};
};
CliMachine* ForwardCli::s_machine = nullptr;

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

/// size bytes from a seeded generator.
std::string random_bytes(std::size_t size, std::uint64_t seed) {
  std::string out(size, '\0');
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i + 8 <= out.size(); i += 8) {
    std::uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  return out;
}

/// Sends payload to an echo server through local port `local` while reading what comes back
/// (the forward must move both directions at once); nullopt when the connection failed.
std::optional<std::string> echo_both_ways(int local, const std::string& payload) {
  TcpClient c(local);
  if (c.fd() < 0) {
    return std::nullopt;
  }
  std::thread sender([&] {
    c.send_all(payload);
    ::shutdown(c.fd(), SHUT_WR);
  });
  std::optional<std::string> back = c.read_to_eof();
  sender.join();
  return back;
}

TEST_F(ForwardCli, FiftyConcurrentHttpClientsGetTheirOwnBodies) {
  std::filesystem::path root = m_dir / "www";
  std::filesystem::create_directories(root);
  for (int i = 0; i < 50; ++i) {
    write_text(root / ("f" + std::to_string(i)),
               std::string(1000 + i * 997, char('a' + i % 26)) + std::to_string(i));
  }
  int remote = free_port();
  auto http = start_http(remote, root);
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "f50");

  std::vector<HttpReply> replies(50);
  std::vector<std::thread> clients;
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] { replies[i] = http_get(local, "/f" + std::to_string(i)); });
  }
  for (std::thread& t : clients) {
    t.join();
  }
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(replies[i].status, 200) << "client " << i;
    EXPECT_EQ(replies[i].body, read_text(root / ("f" + std::to_string(i)))) << "client " << i;
  }
  fwd->stop();
  http->stop();
}

TEST_F(ForwardCli, TwoHundredMegabytesEchoIntactBothWays) {
  int remote = free_port();
  auto echo = start_echo(remote);
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "big");

  std::string payload = random_bytes(200 * 1000 * 1000, 42);
  std::optional<std::string> back = echo_both_ways(local, payload);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->size(), payload.size());
  EXPECT_EQ(sha256_hex(*back), sha256_hex(payload));
  fwd->stop();
  echo->stop();
}

TEST_F(ForwardCli, AClientThatStopsReadingHoldsBackTheSenderNotMemory) {
  constexpr std::size_t k_total = 300u << 20;
  int remote = free_port();
  write_text(m_dir / "source.py", k_source_server);
  Process source({"/usr/bin/python3", (m_dir / "source.py").string(), std::to_string(remote),
                  std::to_string(k_total)});
  ASSERT_TRUE(eventually([&] { return port_accepts("127.0.0.1", remote); }));
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "st");
  long before = rss_kib(fwd->pid());

  TcpClient c(local);  // connects, then reads nothing for a while
  ASSERT_GE(c.fd(), 0);
  long peak = 0;
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    peak = std::max(peak, rss_kib(fwd->pid()));
  }
  // Buffers, libssh2's queue up to the window, allocator slack: a few MiB. Without flow control
  // the 300 MiB the server pushes would pile up here.
  EXPECT_LT(peak - before, 48 * 1024) << "RSS grew from " << before << " to " << peak << " KiB";

  std::optional<std::string> got = c.read_to_eof();
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), k_total);
  bool pattern = true;
  for (std::size_t i = 0; i < got->size() && pattern; i += 4093) {
    pattern = static_cast<unsigned char>((*got)[i]) == i % 256;
  }
  EXPECT_TRUE(pattern);
  fwd->stop();
}

TEST_F(ForwardCli, ReconnectsAfterSshdRestartAndServesNewConnections) {
  int remote = free_port();
  auto echo = start_echo(remote);
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "rc");

  TcpClient open_conn(local);
  ASSERT_TRUE(open_conn.send_all("before"));
  char buf[6];
  ASSERT_EQ(::recv(open_conn.fd(), buf, sizeof buf, MSG_WAITALL), 6);
  int master = ssh_child(fwd->pid());
  ASSERT_GT(master, 0) << "OpenSSH does not carry the forward";

  s_machine->drop_connections_and_restart_sshd();

  // The connection open during the drop ends cleanly (EOF), it does not hang.
  std::optional<std::string> rest = open_conn.read_to_eof();
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(*rest, "");
  // New connections work again once the forward has reconnected.
  EXPECT_TRUE(eventually([&] { return echo_both_ways(local, "after") == "after"; }));
  EXPECT_TRUE(fwd->is_running());
  EXPECT_FALSE(process_alive(master));
  EXPECT_GT(ssh_child(fwd->pid()), 0) << "a new OpenSSH master carries it now";
  std::string log = read_text(m_dir / "rc.err");
  EXPECT_NE(log.find("connection lost"), std::string::npos) << log;
  EXPECT_NE(log.find("reconnected"), std::string::npos) << log;
  fwd->stop();
  echo->stop();
}

TEST_F(ForwardCli, OpenSshCarriesTheBytesWithOnlyThePinnedKeyAndEndsWithTheForward) {
  int remote = free_port();
  auto echo = start_echo(remote);
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "os");
  int master = ssh_child(fwd->pid());
  ASSERT_GT(master, 0) << "no OpenSSH master under the forward";
  std::vector<std::string> argv = cmdline_of(master);
  auto has = [&](const std::string& word) {
    return std::find(argv.begin(), argv.end(), word) != argv.end();
  };
  for (const char* option :
       {"StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "BatchMode=yes", "ForwardAgent=no",
        "ExitOnForwardFailure=yes", "ServerAliveInterval=15", "GlobalKnownHostsFile=/dev/null"}) {
    EXPECT_TRUE(has(option)) << option;
  }
  EXPECT_TRUE(has("-F") && has("/dev/null")) << "the user's ssh config must not apply";
  EXPECT_FALSE(has("-L") || has("-R") || has("-D")) << "the master forwards nothing itself";
  // Its known_hosts holds the machine's pinned key and nothing else.
  std::filesystem::path known_hosts = s_machine->home() / "machines" / "gpu1" / "known_hosts";
  EXPECT_TRUE(has("UserKnownHostsFile=" + known_hosts.string()));
  EXPECT_EQ(read_text(known_hosts), "[127.0.0.1]:" + std::to_string(s_machine->sshd().port()) +
                                        " " + s_machine->sshd().host_public_key() + "\n");

  TcpClient c(local);
  ASSERT_TRUE(c.send_all("through OpenSSH"));
  ::shutdown(c.fd(), SHUT_WR);
  EXPECT_EQ(c.read_to_eof().value_or("?"), "through OpenSSH");

  fwd->stop();
  EXPECT_TRUE(eventually([&] { return !process_alive(master); }));
  EXPECT_FALSE(process_alive(master)) << "the OpenSSH master outlived its forward";
  echo->stop();
}

TEST_F(ForwardCli, TheLibssh2FallbackStillForwardsBothWaysAndReconnects) {
  int remote = free_port();
  auto echo = start_echo(remote);
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "lb",
                           "libssh2");
  EXPECT_EQ(ssh_child(fwd->pid()), 0) << "GPUMACHINE_SSH_CLIENT=libssh2 must not use OpenSSH";

  std::string payload = random_bytes(8 * 1000 * 1000, 7);
  std::optional<std::string> back = echo_both_ways(local, payload);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(sha256_hex(*back), sha256_hex(payload));

  s_machine->drop_connections_and_restart_sshd();
  EXPECT_TRUE(eventually([&] { return echo_both_ways(local, "after") == "after"; }));
  std::string log = read_text(m_dir / "lb.err");
  EXPECT_NE(log.find("reconnected"), std::string::npos) << log;
  fwd->stop();
  echo->stop();
}

TEST_F(ForwardCli, WithoutAnOpenSshClientTheForwardUsesLibssh2) {
  int remote = free_port();
  auto echo = start_echo(remote);
  TempDir no_ssh("gm-fwd-path");  // a PATH in which there is no `ssh`
  int local = free_port();
  std::string spec = std::to_string(local) + ":127.0.0.1:" + std::to_string(remote);
  SpawnOptions o = s_machine->spawn(m_dir / "np.out", m_dir / "np.err");
  o.env["PATH"] = no_ssh.path().string();
  Process fwd({GM_BINARY_PATH, "forward", s_machine->name(), spec}, o);
  ASSERT_NE(wait_for_line(m_dir / "np.out", "forwarding "), "") << read_text(m_dir / "np.err");
  EXPECT_EQ(ssh_child(fwd.pid()), 0);
  EXPECT_EQ(echo_both_ways(local, "no ssh here"), "no ssh here");
  fwd.stop();

  // Asking for OpenSSH where there is none is an error that names the fix.
  o.env["GPUMACHINE_SSH_CLIENT"] = "openssh";
  CaptureResult r = run_capture({GM_BINARY_PATH, "forward", s_machine->name(), spec}, {}, o);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("no OpenSSH client"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: install it"), std::string::npos) << r.err;
  echo->stop();
}

// Its own machine: its sshd is replaced by one with another host key on the same port.
TEST(ForwardHostKey, AServerWithAnotherHostKeyIsRefusedByBothClients) {
  CliMachine machine("fwdkey");
  SshdOptions impostor_options;
  impostor_options.port = machine.sshd().port();
  machine.sshd().stop();
  SshdFixture impostor(impostor_options);
  for (const std::string client : {"openssh", "libssh2"}) {
    SpawnOptions o;
    o.env = machine.env();
    o.env["GPUMACHINE_SSH_CLIENT"] = client;
    CaptureResult r = run_capture(
        {GM_BINARY_PATH, "forward", "fwdkey", "0:127.0.0.1:" + std::to_string(free_port())}, {}, o);
    EXPECT_EQ(r.status, 1) << client << ": " << r.err;
    EXPECT_NE(r.err.find("machine 'fwdkey': host key does not match the pinned key"),
              std::string::npos)
        << client << ": " << r.err;
    // The cause names the key the server sent; the hint says what to do.
    EXPECT_NE(r.err.find("server presented SHA256:"), std::string::npos) << client << ": " << r.err;
    EXPECT_NE(r.err.find("hint: if the host was legitimately re-installed"), std::string::npos)
        << client << ": " << r.err;
    EXPECT_EQ(r.out.find("forwarding"), std::string::npos) << client << ": " << r.out;
  }
  // In the background the refusal is said on the terminal, not in a log that was never written.
  SpawnOptions o;
  o.env = machine.env();
  CaptureResult r = run_capture({GM_BINARY_PATH, "forward", "fwdkey",
                                 "0:127.0.0.1:" + std::to_string(free_port()), "--background"},
                                {}, o);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("host key does not match the pinned key"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(".log"), std::string::npos) << r.err;
}

TEST_F(ForwardCli, ClosedRemotePortClosesTheClientAndTheForwardGoesOn) {
  int remote = free_port();  // nothing listens there yet
  int local = free_port();
  auto fwd = start_forward(std::to_string(local) + ":127.0.0.1:" + std::to_string(remote), "cl");
  {
    TcpClient c(local);
    ASSERT_GE(c.fd(), 0);
    std::optional<std::string> got = c.read_to_eof();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, "");
  }
  EXPECT_TRUE(fwd->is_running());
  auto echo = start_echo(remote);
  TcpClient c(local);
  ASSERT_TRUE(c.send_all("still here"));
  ::shutdown(c.fd(), SHUT_WR);
  EXPECT_EQ(c.read_to_eof().value_or("?"), "still here");
  fwd->stop();
  echo->stop();
}

TEST_F(ForwardCli, BackgroundListStopRoundTrip) {
  int remote = free_port();
  auto echo = start_echo(remote);
  CaptureResult r = s_machine->gm({"--format", "json", "forward", s_machine->name(),
                                   "0:127.0.0.1:" + std::to_string(remote), "--background"});
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json started = nlohmann::json::parse(r.out);
  int pid = started.at("pid").get<int>();
  int local = started.at("forwards").at(0).at("local_port").get<int>();
  EXPECT_TRUE(started.at("background").get<bool>());
  EXPECT_TRUE(process_alive(pid));
  EXPECT_TRUE(std::filesystem::exists(started.at("log").get<std::string>()));

  TcpClient c(local);
  ASSERT_TRUE(c.send_all("bg"));
  ::shutdown(c.fd(), SHUT_WR);
  EXPECT_EQ(c.read_to_eof().value_or("?"), "bg");

  CaptureResult list = s_machine->gm({"--format", "json", "forward", "--list"});
  ASSERT_EQ(list.status, 0) << list.err;
  nlohmann::json rows = nlohmann::json::parse(list.out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("pid").get<int>(), pid);
  EXPECT_TRUE(rows[0].at("running").get<bool>());
  EXPECT_EQ(rows[0].at("forwards").at(0).at("remote_port").get<int>(), remote);

  int master = ssh_child(pid);
  EXPECT_GT(master, 0) << "no OpenSSH master under the background forward";

  CaptureResult stop = s_machine->gm({"forward", s_machine->name(), "--stop"});
  ASSERT_EQ(stop.status, 0) << stop.err;
  EXPECT_TRUE(eventually([&] { return !process_alive(pid); }));
  EXPECT_FALSE(process_alive(pid));
  EXPECT_TRUE(eventually([&] { return master == 0 || !process_alive(master); }));
  EXPECT_FALSE(port_accepts("127.0.0.1", local));
  CaptureResult after = s_machine->gm({"--format", "json", "forward", "--list"});
  EXPECT_EQ(nlohmann::json::parse(after.out).size(), 0u);
  echo->stop();
}

// Its own machine: rm takes it away. A background forward must not outlive its machine, where
// nothing (`forward --list`, `--stop`) could find it any more.
TEST(ForwardRm, RmStopsTheMachinesBackgroundForwards) {
  CliMachine machine("fwdrm");
  CaptureResult r = machine.gm({"--format", "json", "forward", "fwdrm",
                                "0:127.0.0.1:" + std::to_string(free_port()), "--background"});
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json started = nlohmann::json::parse(r.out);
  int pid = started.at("pid").get<int>();
  int local = started.at("forwards").at(0).at("local_port").get<int>();
  ASSERT_TRUE(process_alive(pid));

  CaptureResult rm = machine.gm({"--format", "json", "rm", "fwdrm"});
  EXPECT_EQ(rm.status, 0) << rm.err;
  EXPECT_NE(rm.out.find("stopped the background forward (pid " + std::to_string(pid) + ")"),
            std::string::npos)
      << rm.out;
  EXPECT_TRUE(eventually([&] { return !process_alive(pid); }));
  EXPECT_FALSE(port_accepts("127.0.0.1", local));
  if (process_alive(pid)) {
    ::kill(pid, SIGKILL);  // what rm should have done
  }
}

TEST_F(ForwardCli, BadSpecsAreUsageErrors) {
  for (std::string spec :
       {"abc", "0", "70000", "1:2", "8080:host:0", "8080::80", "a:b:c:d:e", "[::1:80:h:22"}) {
    CaptureResult r = s_machine->gm({"forward", s_machine->name(), spec});
    EXPECT_EQ(r.status, 2) << spec << ": " << r.err;
    EXPECT_NE(r.err.find("forward spec"), std::string::npos) << r.err;
  }
}

TEST_F(ForwardCli, PortInUseIsAUsageErrorThatSuggestsAFreePort) {
  int taken = free_port();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(taken));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  CaptureResult r =
      s_machine->gm({"forward", s_machine->name(), std::to_string(taken) + ":127.0.0.1:80"});
  ::close(fd);
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("already in use"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: pick another local port, e.g. "), std::string::npos) << r.err;
}

}  // namespace
}  // namespace gm::testing
