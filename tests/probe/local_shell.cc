#include "probe/local_shell.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace gm::test {

int LocalShell::exec(const std::string& command, const ssh::OutputSink& on_stdout,
                     const ssh::OutputSink& on_stderr, std::string_view stdin_data) {
  m_commands.push_back(command);
  int in[2], out[2], err[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) {
    throw std::runtime_error("pipe failed");
  }
  // Build the environment before fork: only async-signal-safe calls are allowed in the child.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (!m_env.contains(entry.substr(0, entry.find('=')))) {
      env_strings.push_back(std::move(entry));
    }
  }
  for (const auto& [k, v] : m_env) {
    env_strings.push_back(k + "=" + v);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) {
    envp.push_back(s.data());
  }
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      close(fd);
    }
    const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
    execve("/bin/sh", const_cast<char**>(argv), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  // A payload that does not read its stdin must not kill us with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  std::size_t written = 0;
  int in_fd = in[1];
  if (stdin_data.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  bool out_open = true, err_open = true;
  std::array<char, 65536> buf;
  while (out_open || err_open) {
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
          written += static_cast<std::size_t>(n);
        if (n < 0 || written == stdin_data.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t n = read(p.fd, buf.data(), buf.size());
      if (n <= 0) {
        (p.fd == out[0] ? out_open : err_open) = false;
        continue;
      }
      (p.fd == out[0] ? on_stdout : on_stderr)(std::string_view(buf.data(), n));
    }
  }
  if (in_fd >= 0)
    close(in_fd);
  close(out[0]);
  close(err[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void LocalShell::upload(const std::string& remote_path, std::string_view content, unsigned mode) {
  {
    std::ofstream f(remote_path, std::ios::binary | std::ios::trunc);
    if (!f)
      throw std::runtime_error("cannot write " + remote_path);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  chmod(remote_path.c_str(), mode);
}

}  // namespace gm::test
