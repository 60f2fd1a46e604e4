// Starts tests/support/http_test_server.py on 127.0.0.1 (fork/exec) and ends it by pid.
#pragma once

#include <sys/types.h>

#include <string>

namespace gm::test {

/// A running loopback HTTP test server; stopped (SIGTERM to its pid, then reaped) on destruction.
class LoopbackServer {
 public:
  LoopbackServer();
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  int port() const { return m_port; }
  /// "http://127.0.0.1:<port>".
  std::string url() const;

 private:
  pid_t m_pid = -1;
  int m_port = 0;
};

/// The python3 interpreter the support scripts run with.
std::string python3();

}  // namespace gm::test
