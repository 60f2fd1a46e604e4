#include "provision/local_shell.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace gm::provision::testing {

namespace {

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Runs argv with exactly env (nothing inherited), feeding stdin and streaming both outputs.
int spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::string& cwd, std::string_view stdin_data, const ssh::OutputSink& on_stdout,
          const ssh::OutputSink& on_stderr) {
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
    if (chdir(cwd.c_str()) != 0) {
      _exit(127);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  set_nonblocking(in[1]);
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
        const ssh::OutputSink& sink = p.fd == out[0] ? on_stdout : on_stderr;
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

}  // namespace

std::filesystem::path simhost_script() {
  return std::filesystem::path(GM_SOURCE_DIR) / "tests/support/simhost/simhost";
}

int run_simhost(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", simhost_script().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string err;
  int rc = spawn(argv, {{"PATH", "/usr/bin:/bin"}}, "/", {}, nullptr,
                 [&](std::string_view c) { err.append(c); });
  if (rc != 0) {
    throw std::runtime_error("simhost failed: " + err);
  }
  return rc;
}

LocalShell::LocalShell(std::filesystem::path state_dir) : m_state(std::move(state_dir)) {
  // The guard that keeps tests from ever running the scripts against this machine.
  if (m_state.empty() || !std::filesystem::exists(m_state / ".simhost")) {
    throw std::runtime_error("LocalShell: " + m_state.string() +
                             " is not a simulated host (SIMHOST_STATE); refusing to run");
  }
  const std::string s = std::filesystem::absolute(m_state).string();
  m_env = {{"PATH", s + "/bin:" + s + "/safebin"},
           {"SIMHOST_STATE", s},
           {"GM_SYSROOT", s + "/root"},
           {"TMPDIR", s + "/root/tmp"},
           {"HOME", s + "/root/tmp"},
           {"LANG", "C"}};
}

int LocalShell::exec(const std::string& command, const ssh::OutputSink& on_stdout,
                     const ssh::OutputSink& on_stderr, std::string_view stdin_data) {
  return spawn({"/bin/bash", "-c", command}, m_env, m_env.at("HOME"), stdin_data, on_stdout,
               on_stderr);
}

void LocalShell::upload(const std::string& remote_path, std::string_view content, unsigned mode) {
  std::filesystem::path target = std::filesystem::path(m_env.at("GM_SYSROOT")) /
                                 std::filesystem::path(remote_path).relative_path();
  std::filesystem::create_directories(target.parent_path());
  std::ofstream(target, std::ios::binary) << content;
  std::filesystem::permissions(target, static_cast<std::filesystem::perms>(mode));
}

}  // namespace gm::provision::testing
