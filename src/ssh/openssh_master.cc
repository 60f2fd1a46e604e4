#include "ssh/openssh_master.h"

#include "gm/error.h"
#include "ssh/interactive.h"
#include "ssh/session.h"
#include "ssh/session_impl.h"
#include "ssh/wire.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/path_search.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace gm::ssh {

namespace {

using std::chrono::milliseconds;
using Stage = SshError::Stage;

// PROTOCOL.mux message types and version.
constexpr std::uint32_t k_mux_version = 4;
constexpr std::uint32_t k_msg_hello = 0x00000001;
constexpr std::uint32_t k_new_stdio_fwd = 0x10000008;
constexpr std::uint32_t k_ok = 0x80000001;
constexpr std::uint32_t k_permission_denied = 0x80000002;
constexpr std::uint32_t k_failure = 0x80000003;
constexpr std::uint32_t k_session_opened = 0x80000006;
// The master's own control messages are small; anything larger is not OpenSSH talking.
constexpr std::uint32_t k_max_mux_packet = 64 * 1024;
// How much of the master's stderr is kept for the error message.
constexpr std::size_t k_said_tail = 4096;
constexpr milliseconds k_stop_grace{2000};

/// A length-prefixed mux packet.
std::string packet(const std::string& body) {
  std::string out;
  wire::put_string(out, body);
  return out;
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// One descriptor with one byte, as OpenSSH's mm_send_fd sends it.
bool send_fd(int over, int fd) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n = 0;
  do {
    n = ::sendmsg(over, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

/// A private 0700 directory for the control socket: short (a socket path has about 100 bytes,
/// and OpenSSH adds 17 while it creates it) and free of the `%` and `~` OpenSSH expands.
std::filesystem::path make_control_dir() {
  std::string base = "/tmp";
  const char* tmp = std::getenv("TMPDIR");
  if (tmp != nullptr && tmp[0] == '/' && std::strlen(tmp) < 48 &&
      std::strpbrk(tmp, "%~ ") == nullptr) {
    base = tmp;
  }
  std::string path = base + "/gm-fwd-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr) {
    throw Error("forward", "cannot make a directory for the OpenSSH control socket in " + base,
                std::strerror(errno), "check that " + base + " exists and is writable");
  }
  return path;
}

std::string subject_of(const OpenSshLogin& login) {
  const SshTarget& t = login.target;
  return !login.subject.empty() ? login.subject
                                : t.user + "@" + t.host + ":" + std::to_string(t.port);
}

bool contains(const std::string& text, const char* what) {
  return text.find(what) != std::string::npos;
}

/// The error for a master that exited before it was logged in, by what OpenSSH said.
SshError login_error(const OpenSshLogin& login, const std::string& said, const std::string& why) {
  const SshTarget& t = login.target;
  std::string subject = subject_of(login);
  if (contains(said, "Host key verification failed") ||
      contains(said, "REMOTE HOST IDENTIFICATION HAS CHANGED")) {
    std::string cause;
    std::size_t at = said.find("SHA256:");
    if (at != std::string::npos) {
      cause = "server presented " + said.substr(at, said.find_first_of(" \r\n.", at) - at);
      if (!t.host_key.empty()) {
        cause += ", pinned is " + fingerprint_sha256(t.host_key);
      }
      cause += "; ";
    }
    cause += "OpenSSH: " + why;
    return SshError(Stage::hostkey, subject,
                    "host key does not match the pinned key (possible man-in-the-middle)", cause,
                    k_host_key_mismatch_hint);
  }
  if (contains(said, "Permission denied")) {
    return SshError(Stage::auth, subject, "the server refused the login as " + t.user, why,
                    "check that the public half of " + t.key_path + " is in " + t.user +
                        "'s ~/.ssh/authorized_keys on the machine");
  }
  if (contains(said, "Connection refused") || contains(said, "timed out") ||
      contains(said, "No route to host") || contains(said, "Network is unreachable") ||
      contains(said, "Could not resolve")) {
    return SshError(Stage::connect, subject,
                    "cannot connect to " + t.host + ":" + std::to_string(t.port), why,
                    "check that the machine is running and that port " + std::to_string(t.port) +
                        " is reachable from here");
  }
  return SshError(Stage::handshake, subject, "the OpenSSH client could not log in", why,
                  "run the command again with -v to see all that OpenSSH said; "
                  "GPUMACHINE_SSH_CLIENT=libssh2 forwards with the built-in client instead");
}

}  // namespace

std::optional<std::string> openssh_for_forwards() {
  const char* env = std::getenv("GPUMACHINE_SSH_CLIENT");
  std::string choice = env != nullptr ? env : "";
  if (choice == "libssh2") {
    return std::nullopt;
  }
  if (!choice.empty() && choice != "openssh") {
    throw UsageError("GPUMACHINE_SSH_CLIENT=" + choice, "not an SSH client gpumachine knows",
                     "use openssh (the default where `ssh` is installed) or libssh2");
  }
  std::optional<std::string> ssh = util::find_in_path("ssh");
  if (!ssh && choice == "openssh") {
    throw Error("GPUMACHINE_SSH_CLIENT=openssh", "no OpenSSH client ('ssh' is not in PATH)", "",
                "install it (Debian: apt-get install openssh-client), or unset "
                "GPUMACHINE_SSH_CLIENT to forward with the built-in client");
  }
  return ssh;
}

std::vector<std::string> openssh_master_argv(const std::string& ssh_path, const OpenSshLogin& login,
                                             const std::filesystem::path& control) {
  std::vector<std::string> options = {"-F",
                                      "/dev/null",
                                      "-M",
                                      "-S",
                                      control.string(),
                                      "-N",
                                      "-n",
                                      "-T",
                                      "-o",
                                      "ControlPersist=no",
                                      "-o",
                                      "BatchMode=yes",
                                      "-o",
                                      "ForwardAgent=no",
                                      "-o",
                                      "ForwardX11=no",
                                      "-o",
                                      "ClearAllForwardings=yes",
                                      "-o",
                                      "ExitOnForwardFailure=yes",
                                      "-o",
                                      "UpdateHostKeys=no",
                                      "-o",
                                      "ConnectTimeout=15",
                                      "-o",
                                      "ServerAliveInterval=15",
                                      "-o",
                                      "ServerAliveCountMax=3",
                                      "-o",
                                      "LogLevel=ERROR"};
  return openssh_argv(ssh_path, login.target, login.known_hosts, options, "", false);
}

OpenSshMaster::OpenSshMaster(const std::string& ssh_path, const OpenSshLogin& login)
    : m_dir(make_control_dir()), m_control(m_dir / "ctl") {
  std::vector<std::string> argv = openssh_master_argv(ssh_path, login, m_control);
  util::debug("starting the OpenSSH master: " + [&] {
    std::string line;
    for (const std::string& a : argv) {
      line += (line.empty() ? "" : " ") + a;
    }
    return line;
  }());
  std::vector<char*> args;
  for (std::string& a : argv) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::filesystem::remove_all(m_dir);
    throw Error("forward", "cannot make a pipe for the OpenSSH client", std::strerror(errno));
  }
  m_stderr.reset(fds[0]);
  util::Fd write_end(fds[1]);
  util::Fd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  const pid_t parent = ::getpid();
  m_pid = ::fork();
  if (m_pid < 0) {
    std::filesystem::remove_all(m_dir);
    throw Error("forward", "cannot start the OpenSSH client", std::strerror(errno));
  }
  if (m_pid == 0) {
    // Its own process group: a Ctrl-C on the terminal is ours to handle, not the master's.
    ::setpgid(0, 0);
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
      _exit(127);
    }
#endif
    // It holds two descriptors per forwarded connection (the protocol passes the socket as the
    // forward's stdin and its stdout): the soft limit of 1024 would cap a forward near 500.
    rlimit files{};
    if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &files);
    }
    ::dup2(null_fd.get(), STDIN_FILENO);
    ::dup2(null_fd.get(), STDOUT_FILENO);
    ::dup2(write_end.get(), STDERR_FILENO);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGQUIT, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  write_end.reset();
  ::fcntl(m_stderr.get(), F_SETFL, ::fcntl(m_stderr.get(), F_GETFL, 0) | O_NONBLOCK);

  // Logged in once the control socket exists: OpenSSH opens it after authentication.
  while (::access(m_control.c_str(), F_OK) != 0) {
    pollfd p{m_stderr.get(), POLLIN, 0};
    int n = util::poll_unless_interrupted(&p, 1, milliseconds(20));
    if (n < 0 && errno == EINTR) {
      stop();
      throw InterruptedError(subject_of(login));
    }
    if (n > 0 && !check_alive()) {
      SshError error = login_error(login, m_said, why());
      stop();
      throw error;
    }
  }
}

OpenSshMaster::~OpenSshMaster() {
  stop();
}

void OpenSshMaster::end_process() {
  if (m_pid <= 0) {
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + k_stop_grace;
  ::kill(m_pid, SIGTERM);
  while (::waitpid(m_pid, &m_status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, &m_status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  m_pid = -1;
}

void OpenSshMaster::stop() {
  end_process();
  std::error_code ec;
  std::filesystem::remove_all(m_dir, ec);
}

void OpenSshMaster::drain_stderr() {
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(m_stderr.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (n == 0) {
        m_stderr.reset();
      }
      return;
    }
    std::string_view chunk(buffer, static_cast<std::size_t>(n));
    util::debug("ssh: " + std::string(chunk));
    m_said.append(chunk);
    if (m_said.size() > k_said_tail) {
      m_said.erase(0, m_said.size() - k_said_tail);
    }
  }
}

bool OpenSshMaster::check_alive() {
  if (m_pid <= 0) {
    return false;
  }
  if (m_stderr.get() >= 0) {
    drain_stderr();
  }
  // Its stderr closes when it exits (it starts nothing that would keep it open); a master that
  // closed it anyway is not one to keep.
  if (m_stderr.get() >= 0) {
    return true;
  }
  if (::waitpid(m_pid, &m_status, WNOHANG) == m_pid) {
    m_pid = -1;
  }
  end_process();
  return false;
}

std::string OpenSshMaster::why() const {
  // The last line it said, without the carriage returns OpenSSH puts at line ends.
  std::string text = m_said;
  std::erase(text, '\r');
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  std::size_t start = text.rfind('\n');
  std::string last = start == std::string::npos ? text : text.substr(start + 1);
  if (!last.empty()) {
    return last;
  }
  if (m_status >= 0 && WIFSIGNALED(m_status)) {
    return "the OpenSSH client was killed by signal " + std::to_string(WTERMSIG(m_status));
  }
  return "the OpenSSH client exited" +
         (m_status >= 0 ? " with status " + std::to_string(WEXITSTATUS(m_status)) : "");
}

util::Fd OpenSshMaster::forward(int fd, const std::string& host, int port) {
  util::Fd control(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = m_control.string();
  if (control.get() < 0 || path.size() >= sizeof addr.sun_path) {
    return {};
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(control.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return {};
  }
  // The master reads exactly one packet at a time, so the request and the two descriptors
  // (the connection as the forward's stdin and stdout) may follow the hello at once.
  std::string hello;
  wire::put_u32(hello, k_msg_hello);
  wire::put_u32(hello, k_mux_version);
  std::string request;
  wire::put_u32(request, k_new_stdio_fwd);
  wire::put_u32(request, 1);  // request id
  wire::put_string(request, "");
  wire::put_string(request, host);
  wire::put_u32(request, static_cast<std::uint32_t>(port));
  if (!write_all(control.get(), packet(hello) + packet(request)) || !send_fd(control.get(), fd) ||
      !send_fd(control.get(), fd)) {
    return {};
  }
  ::fcntl(control.get(), F_SETFL, ::fcntl(control.get(), F_GETFL, 0) | O_NONBLOCK);
  return control;
}

MuxEvent OpenSshMaster::read_reply(int control, std::string& buffer, std::string& reason) {
  char chunk[512];
  while (true) {
    ssize_t n = ::recv(control, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      return MuxEvent::closed;
    }
    if (n < 0) {
      break;
    }
    buffer.append(chunk, static_cast<std::size_t>(n));
    if (buffer.size() > 2 * k_max_mux_packet) {
      return MuxEvent::closed;
    }
  }
  wire::Reader reader(buffer);
  MuxEvent event = MuxEvent::none;
  std::size_t used = 0;
  while (true) {
    std::optional<std::string_view> body = reader.string();
    if (!body) {
      break;
    }
    used += 4 + body->size();
    wire::Reader fields(*body);
    std::uint32_t type = fields.u32().value_or(0);
    if (type == k_session_opened || type == k_ok) {
      event = MuxEvent::opened;
    } else if (type == k_failure || type == k_permission_denied) {
      fields.u32();  // request id
      reason = std::string(fields.string().value_or("refused"));
      event = MuxEvent::refused;
    }
  }
  buffer.erase(0, used);
  return event;
}

}  // namespace gm::ssh
