// Test support: a TCP server on 127.0.0.1 that misbehaves on purpose (an SSH server that never
// speaks or floods lines before its version, an HTTP endpoint that never answers or sends an
// endless body). Each connection runs the behaviour in its own thread; everything stops and is
// joined when the server goes away.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace gm::testing {

class HostileServer {
 public:
  /// Runs for one accepted connection; must return soon after \a stopping turns true.
  using Behaviour = std::function<void(int fd, const std::atomic<bool>& stopping)>;

  /// Listens on 127.0.0.1 on a free port.
  explicit HostileServer(Behaviour behaviour);
  ~HostileServer();
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;

  int port() const { return m_port; }
  /// Connections accepted so far.
  int connections() const { return m_connections.load(); }

  /// Accepts, reads and drops what comes, never writes.
  static Behaviour silent();
  /// Sends "not ssh yet\r\n" lines forever, never an SSH version line.
  static Behaviour endless_pre_banner();
  /// Reads an HTTP request's headers, then answers 200 with a body that never ends.
  static Behaviour endless_http_body();

 private:
  void accept_loop();

  Behaviour m_behaviour;
  int m_listen_fd = -1;
  int m_port = 0;
  std::atomic<bool> m_stopping{false};
  std::atomic<int> m_connections{0};
  std::mutex m_mutex;
  std::list<std::thread> m_workers;
  std::thread m_acceptor;
};

}  // namespace gm::testing
