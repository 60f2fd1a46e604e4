#include "ssh/forward_openssh.h"

#include "gm/error.h"
#include "util/log.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace gm::ssh {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Longest sleep in poll(): how soon a stop request without a signal is seen.
constexpr int k_poll_timeout_ms = 500;

}  // namespace

bool sleep_unless_stopped(const std::function<bool()>& stop, milliseconds d) {
  Clock::time_point until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop()) {
      return false;
    }
    std::this_thread::sleep_for(std::min(
        milliseconds(100), std::chrono::duration_cast<milliseconds>(until - Clock::now())));
  }
  return !stop();
}

std::string reconnect_failed_notice(const std::string& cause, milliseconds backoff) {
  return "reconnect failed: " + cause + "; retrying in " +
         std::to_string(static_cast<double>(backoff.count()) / 1000.0).substr(0, 4) + " s";
}

OpenSshPlane::OpenSshPlane(std::string ssh_path, const std::vector<ForwardSpec>& specs,
                           const std::vector<Socket>& listeners, const ForwarderOptions& options,
                           ForwardStats& stats)
    : m_ssh(std::move(ssh_path)),
      m_specs(specs),
      m_listeners(listeners),
      m_options(options),
      m_stats(stats) {}

void OpenSshPlane::start() {
  m_master = std::make_unique<OpenSshMaster>(m_ssh, m_options.openssh_login());
}

void OpenSshPlane::run() {
  milliseconds backoff = m_options.first_backoff;
  while (!m_options.stop_requested()) {
    if (m_master) {
      serve();
      if (m_options.stop_requested()) {
        break;
      }
      m_options.notice("connection lost (" + m_master->why() +
                       "); open connections closed, reconnecting");
      m_conns.clear();
      m_master.reset();
    }
    if (!sleep_unless_stopped(m_options.stop_requested, backoff)) {
      break;
    }
    try {
      start();
      ++m_stats.reconnects;
      backoff = m_options.first_backoff;
      m_options.notice("reconnected; forwarding again");
    } catch (const InterruptedError&) {
      break;
    } catch (const Error& e) {
      backoff = std::min(backoff * 2, m_options.max_backoff);
      m_options.notice(reconnect_failed_notice(e.what(), backoff));
    }
  }
  m_conns.clear();
  m_master.reset();
}

void OpenSshPlane::serve() {
  std::vector<pollfd> fds;
  while (!m_options.stop_requested()) {
    fds.clear();
    fds.push_back({m_master->event_fd(), POLLIN, 0});
    short accepting = m_conns.size() < m_options.max_connections ? POLLIN : 0;
    for (const Socket& l : m_listeners) {
      fds.push_back({l.get(), accepting, 0});
    }
    for (const Conn& c : m_conns) {
      fds.push_back({c.control.get(), POLLIN, 0});
    }
    int n = ::poll(fds.data(), fds.size(), k_poll_timeout_ms);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw Error("forward", "poll failed", std::strerror(errno));
    }
    if (fds[0].revents != 0 && !m_master->check_alive()) {
      return;
    }
    std::size_t i = 1 + m_listeners.size();
    for (auto it = m_conns.begin(); it != m_conns.end(); ++i) {
      if (fds[i].revents == 0) {
        ++it;
        continue;
      }
      std::string reason;
      MuxEvent event = OpenSshMaster::read_reply(it->control.get(), it->replies, reason);
      if (event == MuxEvent::refused) {
        // The server could not connect to the remote port: the master closed the client's
        // connection, and the forward goes on.
        ++m_stats.refused;
        util::debug("forward " + m_specs[it->listener].describe() +
                    ": the server refused the channel: " + reason);
      }
      it = event == MuxEvent::refused || event == MuxEvent::closed ? m_conns.erase(it) : ++it;
    }
    for (std::size_t l = 0; l < m_listeners.size(); ++l) {
      if ((fds[1 + l].revents & POLLIN) != 0) {
        accept_from(l);
      }
    }
  }
}

void OpenSshPlane::accept_from(std::size_t index) {
  while (m_conns.size() < m_options.max_connections) {
    Socket client(::accept4(m_listeners[index].get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.get() < 0) {
      return;
    }
    ++m_stats.connections;
    int one = 1;
    ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const ForwardSpec& spec = m_specs[index];
    // The master now holds the connection; our copy closes when `client` goes.
    util::Fd control = m_master->forward(client.get(), spec.remote_host, spec.remote_port);
    if (control.get() < 0) {
      util::debug("forward " + spec.describe() +
                  ": the OpenSSH master did not take the connection");
      continue;
    }
    m_conns.push_back(Conn{std::move(control), {}, index});
  }
}

}  // namespace gm::ssh
