#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace gm::testing {

namespace {

std::runtime_error sys_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

int decode_status(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

// Everything exec needs is built before fork: only async-signal-safe calls happen in the child.
struct ExecPlan {
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  ExecPlan(const std::vector<std::string>& args, const SpawnOptions& options) : argv_storage(args) {
    if (args.empty()) {
      throw std::runtime_error("spawn: empty argv");
    }
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      std::size_t eq = entry.find('=');
      if (eq != std::string::npos) {
        env[entry.substr(0, eq)] = entry.substr(eq + 1);
      }
    }
    for (const auto& [key, value] : options.env) {
      env[key] = value;
    }
    for (const auto& [key, value] : env) {
      env_storage.push_back(key + "=" + value);
    }
    for (std::string& a : argv_storage) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    for (std::string& e : env_storage) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
  }
};

int open_for_child(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw sys_error("open " + path.string());
  }
  return fd;
}

// The child: wire up fds (each -1 = inherit), chdir, exec. Never returns.
[[noreturn]] void exec_child(const ExecPlan& plan, const SpawnOptions& options, int in_fd,
                             int out_fd, int err_fd) {
  signal(SIGPIPE, SIG_DFL);
  if (in_fd >= 0 && dup2(in_fd, 0) < 0) {
    _exit(127);
  }
  if (out_fd >= 0 && dup2(out_fd, 1) < 0) {
    _exit(127);
  }
  if (err_fd >= 0 && dup2(err_fd, 2) < 0) {
    _exit(127);
  }
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) {
    _exit(127);
  }
  execvpe(plan.argv[0], plan.argv.data(), const_cast<char**>(plan.envp.data()));
  _exit(127);
}

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string templ =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + prefix + ".XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    throw sys_error("mkdtemp " + templ);
  }
  m_path = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(m_path, ec);
}

Process::Process(const std::vector<std::string>& argv, const SpawnOptions& options) {
  ExecPlan plan(argv, options);
  int in_fd = options.null_stdin ? open_for_child("/dev/null", O_RDONLY) : -1;
  int out_fd = options.stdout_path.empty()
                   ? -1
                   : open_for_child(options.stdout_path, O_WRONLY | O_CREAT | O_APPEND);
  int err_fd = options.stderr_path.empty()
                   ? -1
                   : open_for_child(options.stderr_path, O_WRONLY | O_CREAT | O_APPEND);
  pid_t pid = fork();
  if (pid == 0) {
    exec_child(plan, options, in_fd, out_fd, err_fd);
  }
  int saved_errno = errno;
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  if (pid < 0) {
    errno = saved_errno;
    throw sys_error("fork");
  }
  m_pid = pid;
}

Process::~Process() {
  stop();
}

bool Process::is_running() {
  if (m_pid == 0) {
    return false;
  }
  int status = 0;
  pid_t r = waitpid(m_pid, &status, WNOHANG);
  if (r == m_pid) {
    m_status = status;
    m_pid = 0;
    return false;
  }
  return true;
}

int Process::stop(std::chrono::milliseconds grace) {
  if (m_pid == 0) {
    return decode_status(m_status);
  }
  kill(m_pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!is_running()) {
      return decode_status(m_status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(m_pid, SIGKILL);
  return wait();
}

int Process::wait() {
  if (m_pid == 0) {
    return decode_status(m_status);
  }
  int status = 0;
  while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
  }
  m_status = status;
  m_pid = 0;
  return decode_status(status);
}

CaptureResult run_capture(const std::vector<std::string>& argv, const std::string& stdin_data,
                          const SpawnOptions& options) {
  ExecPlan plan(argv, options);
  int in_pipe[2];
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw sys_error("pipe2");
  }
  pid_t pid = fork();
  if (pid == 0) {
    exec_child(plan, options, in_pipe[0], out_pipe[1], err_pipe[1]);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    throw sys_error("fork");
  }
  CaptureResult result;
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  if (stdin_data.empty()) {
    ::close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int open_outputs = 2;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&result.out, &result.err};
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  int signals_sent = 0;  // past the limit: SIGTERM, then SIGKILL, then stop reading
  while (open_outputs > 0 || in_fd >= 0) {
    int wait_ms = -1;
    if (options.limit.count() > 0) {
      const Clock::time_point next =
          started + options.limit + std::chrono::seconds(5) * signals_sent;
      if (Clock::now() >= next) {
        if (signals_sent == 2) {
          break;  // its descendants still hold the pipes: give up on them
        }
        ::kill(pid, signals_sent == 0 ? SIGTERM : SIGKILL);
        ++signals_sent;
        continue;
      }
      wait_ms = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count() + 1);
    }
    pollfd pfds[3];
    int slot[3];  // which fds[] entry each pollfd is (2 = stdin)
    int n = 0;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) {
        slot[n] = i;
        pfds[n++] = {fds[i], POLLIN, 0};
      }
    }
    if (in_fd >= 0) {
      slot[n] = 2;
      pfds[n++] = {in_fd, POLLOUT, 0};
    }
    if (poll(pfds, static_cast<nfds_t>(n), wait_ms) < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw sys_error("poll");
    }
    for (int k = 0; k < n; ++k) {
      if (pfds[k].revents == 0) {
        continue;
      }
      int i = slot[k];
      if (i < 2) {
        char buf[65536];
        ssize_t r = ::read(fds[i], buf, sizeof buf);
        if (r > 0) {
          sinks[i]->append(buf, static_cast<std::size_t>(r));
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(fds[i]);
          fds[i] = -1;
          --open_outputs;
        }
        continue;
      }
      ssize_t w = ::write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (w > 0) {
        written += static_cast<std::size_t>(w);
      }
      if (written == stdin_data.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  for (int fd : {fds[0], fds[1], in_fd}) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  if (signals_sent > 0) {
    ::kill(pid, SIGKILL);  // it may have closed its output and still be running
    result.err += "\n[test support: still running after " + std::to_string(options.limit.count()) +
                  " s; killed]\n";
  }
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  result.status = decode_status(status);
  result.peak_rss_kib = usage.ru_maxrss;
  return result;
}

int free_port(const std::string& addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw sys_error("socket");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
  socklen_t len = sizeof sa;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    std::runtime_error error = sys_error("bind " + addr + ":0");
    ::close(fd);
    throw error;
  }
  ::close(fd);
  return ntohs(sa.sin_port);
}

bool port_accepts(const std::string& addr, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

void write_text(const std::filesystem::path& path, const std::string& content, unsigned mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    throw std::runtime_error("cannot write " + path.string());
  }
  std::filesystem::permissions(path, static_cast<std::filesystem::perms>(mode));
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot read " + path.string());
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

namespace {

void set_nonblocking_fd(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

int run_streaming(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env, const std::string& cwd,
                  std::string_view stdin_data, const OutputFn& on_stdout,
                  const OutputFn& on_stderr) {
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) {
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp, args;
  for (std::string& s : env_strings) {
    envp.push_back(s.data());
  }
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& s : argv_copy) {
    args.push_back(s.data());
  }
  args.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // As under sshd: a reader that goes away kills the writer (the test binary ignores SIGPIPE).
    signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      _exit(127);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  set_nonblocking_fd(in[1]);
  size_t written = 0;
  int in_fd = in[1];
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  bool out_open = true, err_open = true;
  char buf[8192];
  while (out_open || err_open || in_fd >= 0) {
    std::vector<pollfd> fds;
    if (out_open)
      fds.push_back({out[0], POLLIN, 0});
    if (err_open)
      fds.push_back({err[0], POLLIN, 0});
    if (in_fd >= 0)
      fds.push_back({in_fd, POLLOUT, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0)
        continue;
      if (p.fd == in_fd) {
        ssize_t n = write(in_fd, stdin_data.data() + written, stdin_data.size() - written);
        if (n > 0)
          written += static_cast<size_t>(n);
        if (n < 0 && errno != EAGAIN)
          written = stdin_data.size();
        if (written == stdin_data.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t n = read(p.fd, buf, sizeof buf);
      if (n > 0) {
        const OutputFn& sink = p.fd == out[0] ? on_stdout : on_stderr;
        if (sink)
          sink(std::string_view(buf, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        (p.fd == out[0] ? out_open : err_open) = false;
      }
    }
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    env[entry.substr(0, eq)] = eq == std::string::npos ? "" : entry.substr(eq + 1);
  }
  return env;
}

}  // namespace gm::testing
