#include "support/hostile_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gm::testing {

namespace {

/// Waits up to 100 ms for \a events on fd; true when ready.
bool ready(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 100) > 0;
}

/// Sends \a data again and again until the peer goes or the server stops.
void send_forever(int fd, std::string_view data, const std::atomic<bool>& stopping) {
  while (!stopping.load()) {
    if (!ready(fd, POLLOUT)) {
      continue;
    }
    if (::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN &&
        errno != EINTR) {
      return;
    }
  }
}

}  // namespace

HostileServer::HostileServer(Behaviour behaviour) : m_behaviour(std::move(behaviour)) {
  m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  if (m_listen_fd < 0 || ::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), length) != 0 ||
      ::listen(m_listen_fd, 16) != 0 ||
      ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    if (m_listen_fd >= 0) {
      ::close(m_listen_fd);
    }
    throw std::runtime_error("HostileServer: cannot listen on 127.0.0.1");
  }
  m_port = ntohs(addr.sin_port);
  m_acceptor = std::thread([this] { accept_loop(); });
}

HostileServer::~HostileServer() {
  m_stopping = true;
  m_acceptor.join();
  std::lock_guard lock(m_mutex);
  for (std::thread& worker : m_workers) {
    worker.join();
  }
  ::close(m_listen_fd);
}

void HostileServer::accept_loop() {
  while (!m_stopping.load()) {
    if (!ready(m_listen_fd, POLLIN)) {
      continue;
    }
    int fd = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    ++m_connections;
    std::lock_guard lock(m_mutex);
    m_workers.emplace_back([this, fd] {
      m_behaviour(fd, m_stopping);
      ::close(fd);
    });
  }
}

HostileServer::Behaviour HostileServer::silent() {
  return [](int fd, const std::atomic<bool>& stopping) {
    char buffer[4096];
    while (!stopping.load()) {
      if (ready(fd, POLLIN) && ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT) == 0) {
        return;  // the client gave up
      }
    }
  };
}

HostileServer::Behaviour HostileServer::endless_pre_banner() {
  return [](int fd, const std::atomic<bool>& stopping) {
    send_forever(fd, "not ssh yet\r\n", stopping);
  };
}

HostileServer::Behaviour HostileServer::endless_http_body() {
  return [](int fd, const std::atomic<bool>& stopping) {
    std::string request;
    char buffer[4096];
    while (!stopping.load() && request.find("\r\n\r\n") == std::string::npos) {
      if (!ready(fd, POLLIN)) {
        continue;
      }
      ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n == 0) {
        return;
      }
      if (n > 0) {
        request.append(buffer, static_cast<std::size_t>(n));
      }
    }
    std::string_view head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n";
    if (::send(fd, head.data(), head.size(), MSG_NOSIGNAL) < 0) {
      return;
    }
    send_forever(fd, std::string(64 * 1024, 'x'), stopping);
  };
}

}  // namespace gm::testing
