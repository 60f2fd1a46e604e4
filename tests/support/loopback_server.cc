#include "support/loopback_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace gm::test {

std::string python3() {
  return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

LoopbackServer::LoopbackServer() {
  int fds[2];
  if (pipe(fds) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::string interpreter = python3();
  std::string script = GM_SOURCE_DIR "/tests/support/http_test_server.py";
  m_pid = fork();
  if (m_pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (m_pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execlp(interpreter.c_str(), interpreter.c_str(), script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string line;
  char c = 0;
  while (read(fds[0], &c, 1) == 1 && c != '\n') {
    line += c;
  }
  close(fds[0]);
  try {
    m_port = std::stoi(line);
  } catch (const std::exception&) {
    kill(m_pid, SIGTERM);
    waitpid(m_pid, nullptr, 0);
    throw std::runtime_error("test server did not report a port");
  }
}

LoopbackServer::~LoopbackServer() {
  if (m_pid > 0) {
    kill(m_pid, SIGTERM);
    waitpid(m_pid, nullptr, 0);
  }
}

std::string LoopbackServer::url() const {
  return "http://127.0.0.1:" + std::to_string(m_port);
}

}  // namespace gm::test
