#include "ssh/forward.h"

#include "gm/error.h"
#include "ssh/forward_openssh.h"
#include "ssh/handles.h"
#include "ssh/wire.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <list>
#include <optional>

namespace gm::ssh {

namespace {

using std::chrono::milliseconds;

// TCP_USER_TIMEOUT: unacknowledged data older than this ends the session socket, so a network
// that silently went away is noticed within a keepalive interval plus this.
constexpr unsigned k_user_timeout_ms = 45000;
// Teardown of a live session (Ctrl-C) may block this long for the channel closes and disconnect.
constexpr long k_teardown_timeout_ms = 2000;
// Longest sleep in poll(): how soon a stop request without a signal is seen.
constexpr int k_poll_timeout_ms = 500;

// ---- spec parsing ----

bool parse_port(std::string_view text, int min, int& port) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return false;
  }
  if (value < min || value > 65535) {
    return false;
  }
  port = value;
  return true;
}

// Splits on ':' outside brackets; "[::1]" loses its brackets.
std::vector<std::string> split_spec(std::string_view text, bool& ok) {
  std::vector<std::string> parts;
  std::string current;
  bool in_brackets = false;
  ok = true;
  for (char c : text) {
    if (c == '[' && !in_brackets && current.empty()) {
      in_brackets = true;
    } else if (c == ']' && in_brackets) {
      in_brackets = false;
    } else if (c == ':' && !in_brackets) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  if (in_brackets) {
    ok = false;
  }
  parts.push_back(current);
  return parts;
}

[[noreturn]] void bad_spec(std::string_view text, const std::string& problem) {
  throw UsageError("forward spec '" + std::string(text) + "'", problem,
                   "use PORT or [LOCAL_ADDR:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT, e.g. 8888 or "
                   "8080:127.0.0.1:8888");
}

// ---- sockets ----

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

struct BoundListener {
  Socket socket;
  int port = 0;
};

/// Binds and listens; errno in err on failure.
BoundListener bind_listener(const std::string& addr, int port, int& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (::getaddrinfo(addr.c_str(), service.c_str(), &hints, &found) != 0 || found == nullptr) {
    err = EADDRNOTAVAIL;
    return {};
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, ::freeaddrinfo);
  Socket sock(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) {
    err = errno;
    return {};
  }
  // Lets a restarted forward take its port back while old connections sit in TIME_WAIT; Linux
  // still refuses a port another socket listens on.
  int one = 1;
  ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(sock.get(), found->ai_addr, found->ai_addrlen) != 0 ||
      ::listen(sock.get(), SOMAXCONN) != 0) {
    err = errno;
    return {};
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  int bound_port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  set_nonblocking(sock.get());
  err = 0;
  return {std::move(sock), bound_port};
}

// ---- buffers ----

/// A fixed-capacity byte queue: appended at the back, consumed from the front.
class Buffer {
 public:
  explicit Buffer(std::size_t capacity)
      : m_data(std::make_unique_for_overwrite<char[]>(capacity)), m_capacity(capacity) {}
  std::size_t size() const { return m_tail - m_head; }
  bool empty() const { return m_tail == m_head; }
  /// Contiguous free space at the back (compacting first when the front has room).
  std::size_t space() {
    if (m_tail == m_capacity && m_head > 0) {
      std::memmove(m_data.get(), m_data.get() + m_head, size());
      m_tail -= m_head;
      m_head = 0;
    }
    return m_capacity - m_tail;
  }
  char* back() { return m_data.get() + m_tail; }
  void commit(std::size_t n) { m_tail += n; }
  const char* front() const { return m_data.get() + m_head; }
  void consume(std::size_t n) {
    m_head += n;
    if (m_head == m_tail) {
      m_head = m_tail = 0;
    }
  }

 private:
  // Not zero-filled: pages cost memory only once data reaches them.
  std::unique_ptr<char[]> m_data;
  std::size_t m_capacity;
  std::size_t m_head = 0;
  std::size_t m_tail = 0;
};

/// Thrown inside the loop when the session itself failed; run() reconnects.
struct SessionLost {
  std::string cause;
};

// libssh2's channel-level failures (the channel is unusable, the session is fine) are the
// contiguous range CHANNEL_FAILURE (-21) .. CHANNEL_EOF_SENT (-27); anything else but EAGAIN
// means the transport is gone or broken.
bool is_channel_error(long rc) {
  return rc <= LIBSSH2_ERROR_CHANNEL_FAILURE && rc >= LIBSSH2_ERROR_CHANNEL_EOF_SENT;
}

enum class ConnState { queued, opening, open, closing };

// The libssh2 call a connection last left half-sent (see Impl::m_blocked).
enum class Op { none, open, write, read, eof, free };

/// The type-specific part of a direct-tcpip channel open (RFC 4254 7.2): where to connect and
/// who asked.
std::string direct_tcpip_message(const std::string& host, int port, const std::string& peer,
                                 int peer_port) {
  std::string m;
  wire::put_string(m, host);
  wire::put_u32(m, static_cast<std::uint32_t>(port));
  wire::put_string(m, peer);
  wire::put_u32(m, static_cast<std::uint32_t>(peer_port));
  return m;
}

struct Conn {
  Conn(Socket s, std::size_t listener_index, std::size_t buffer_bytes, std::string message)
      : client(std::move(s)),
        listener(listener_index),
        to_remote(buffer_bytes),
        to_client(buffer_bytes),
        open_message(std::move(message)) {}

  Socket client;
  std::size_t listener;
  LIBSSH2_CHANNEL* channel = nullptr;
  ConnState state = ConnState::queued;
  Buffer to_remote;
  Buffer to_client;
  std::string open_message;  // direct_tcpip_message()
  bool client_eof = false;   // the client shut down its sending side
  bool eof_sent = false;     // our EOF went to the channel
  bool remote_eof = false;   // the channel sent EOF
  bool client_shut = false;  // we shut down the client's receiving side
  bool client_gone = false;  // the client socket failed: drop everything
};

}  // namespace

std::string ForwardSpec::describe() const {
  auto host = [](const std::string& h) {
    return h.find(':') != std::string::npos ? "[" + h + "]" : h;
  };
  return host(local_addr) + ":" + std::to_string(local_port) + " -> " + host(remote_host) + ":" +
         std::to_string(remote_port);
}

ForwardSpec parse_forward_spec(std::string_view text) {
  bool ok = true;
  std::vector<std::string> parts = split_spec(text, ok);
  if (!ok) {
    bad_spec(text, "unbalanced brackets");
  }
  ForwardSpec spec;
  if (parts.size() == 1) {
    if (!parse_port(parts[0], 1, spec.local_port)) {
      bad_spec(text, "not a port number (1-65535)");
    }
    spec.remote_port = spec.local_port;
    return spec;
  }
  if (parts.size() != 3 && parts.size() != 4) {
    bad_spec(text, "expected 1, 3 or 4 fields separated by ':'");
  }
  std::size_t i = 0;
  if (parts.size() == 4) {
    spec.local_addr = parts[i++];
    if (spec.local_addr.empty()) {
      bad_spec(text, "empty local address");
    }
    if (spec.local_addr == "*") {
      spec.local_addr = "0.0.0.0";
    }
  }
  if (!parse_port(parts[i++], 0, spec.local_port)) {
    bad_spec(text, "bad local port (0-65535; 0 picks a free one)");
  }
  spec.remote_host = parts[i++];
  if (spec.remote_host.empty()) {
    bad_spec(text, "empty remote host");
  }
  if (!parse_port(parts[i], 1, spec.remote_port)) {
    bad_spec(text, "bad remote port (1-65535)");
  }
  return spec;
}

int suggest_free_port(const std::string& addr, int preferred) {
  int err = 0;
  if (preferred > 0) {
    BoundListener probe = bind_listener(addr, preferred, err);
    if (probe.socket.get() >= 0) {
      return probe.port;
    }
  }
  BoundListener any = bind_listener(addr, 0, err);
  return any.socket.get() >= 0 ? any.port : 0;
}

struct Forwarder::Impl {
  std::vector<ForwardSpec> specs;
  std::vector<Socket> listeners;
  ForwarderOptions options;
  std::unique_ptr<Session> session;
  std::list<Conn> conns;
  ForwardStats stats;

  // libssh2 keeps one half-sent packet per session and refuses (LIBSSH2_ERROR_BAD_USE) any other
  // send until the call that started it is repeated. So after a call returns EAGAIN with
  // outbound blocked, only that (connection, call) may touch the session until it completes.
  Conn* blocked_conn = nullptr;
  Op blocked_op = Op::none;
  // libssh2 keeps a channel open in progress in session-wide state: one open at a time.
  Conn* opening = nullptr;

  LIBSSH2_SESSION* raw() const { return session->raw(); }

  bool may_call(const Conn& c, Op op) const {
    return blocked_conn == nullptr || (blocked_conn == &c && blocked_op == op);
  }

  void after_call(Conn& c, Op op, long rc) {
    bool outbound = (libssh2_session_block_directions(raw()) & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
    if (rc == LIBSSH2_ERROR_EAGAIN && outbound) {
      blocked_conn = &c;
      blocked_op = op;
    } else if (blocked_conn == &c && blocked_op == op) {
      blocked_conn = nullptr;
      blocked_op = Op::none;
    }
  }

  std::string last_error() const {
    char* message = nullptr;
    int len = 0;
    libssh2_session_last_error(raw(), &message, &len, 0);
    return message != nullptr ? std::string(message, static_cast<std::size_t>(len)) : "";
  }

  [[noreturn]] void lost(long rc) const {
    std::string text = last_error();
    throw SessionLost{text.empty() ? "libssh2 error " + std::to_string(rc) : text};
  }

  // Frees a channel without blocking: libssh2_channel_free sends EOF and CLOSE first and may
  // answer EAGAIN; true once freed.
  bool free_channel(Conn& c) {
    if (c.channel == nullptr) {
      return true;
    }
    if (!may_call(c, Op::free)) {
      return false;
    }
    int rc = libssh2_channel_free(c.channel);
    after_call(c, Op::free, rc);
    if (rc == LIBSSH2_ERROR_EAGAIN) {
      return false;
    }
    c.channel = nullptr;
    if (rc != 0 && !is_channel_error(rc)) {
      lost(rc);
    }
    return true;
  }

  // An open in progress lives in session-wide libssh2 state and must run to its end (else the
  // next open would be handed this one's channel), so such a connection closes afterwards.
  void start_closing(Conn& c) {
    if (c.state != ConnState::opening) {
      c.state = ConnState::closing;
    }
  }

  // A closing connection may still own the half-sent packet: repeat that call until it is out,
  // so that the channel can be freed and others may send again.
  void finish_blocked(Conn& c) {
    long rc = 0;
    switch (blocked_op) {
      case Op::write:
        rc = libssh2_channel_write(c.channel, c.to_remote.front(), c.to_remote.size());
        break;
      case Op::read:
        rc = libssh2_channel_read(c.channel, c.to_client.back(), c.to_client.space());
        break;
      case Op::eof:
        rc = libssh2_channel_send_eof(c.channel);
        break;
      default:
        return;
    }
    after_call(c, blocked_op, rc);
    if (rc < 0 && rc != LIBSSH2_ERROR_EAGAIN && !is_channel_error(rc)) {
      lost(rc);
    }
  }

  /// Moves what can move for one connection; true when anything changed.
  bool pump(Conn& c) {
    bool progress = false;
    if (blocked_conn == &c && c.state == ConnState::closing) {
      finish_blocked(c);
      return blocked_conn != &c;
    }
    // Client -> buffer, only while the buffer has room (flow control towards the client).
    if (!c.client_eof && !c.client_gone && c.state != ConnState::closing) {
      while (c.to_remote.space() > 0) {
        ssize_t n = ::recv(c.client.get(), c.to_remote.back(), c.to_remote.space(), 0);
        if (n > 0) {
          c.to_remote.commit(static_cast<std::size_t>(n));
          progress = true;
          continue;
        }
        if (n == 0) {
          c.client_eof = true;
          progress = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          c.client_gone = true;
          progress = true;
        }
        break;
      }
    }
    // Buffer -> client.
    while (!c.to_client.empty() && !c.client_gone) {
      ssize_t n = ::send(c.client.get(), c.to_client.front(), c.to_client.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.to_client.consume(static_cast<std::size_t>(n));
        progress = true;
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c.client_gone = true;
        progress = true;
      }
      break;
    }
    if (c.client_gone && c.state != ConnState::closing && c.state != ConnState::opening) {
      start_closing(c);
      progress = true;
    }

    if (c.state == ConnState::queued && opening == nullptr && blocked_conn == nullptr) {
      c.state = ConnState::opening;
      opening = &c;
      progress = true;
    }
    if (c.state == ConnState::opening && may_call(c, Op::open)) {
      // direct-tcpip by hand rather than libssh2_channel_direct_tcpip_ex, so that the channel
      // opens with options.window_bytes: libssh2 refills a window only up to the size it opened
      // with, so widening it afterwards does not last.
      LIBSSH2_CHANNEL* channel = libssh2_channel_open_ex(
          raw(), "direct-tcpip", sizeof "direct-tcpip" - 1, options.window_bytes,
          LIBSSH2_CHANNEL_PACKET_DEFAULT, c.open_message.data(),
          static_cast<unsigned int>(c.open_message.size()));
      int rc = channel != nullptr ? 0 : libssh2_session_last_errno(raw());
      after_call(c, Op::open, rc);
      if (channel != nullptr) {
        c.channel = channel;
        c.state = c.client_gone ? ConnState::closing : ConnState::open;
        opening = nullptr;
        progress = true;
      } else if (rc != LIBSSH2_ERROR_EAGAIN) {
        if (!is_channel_error(rc)) {
          lost(rc);
        }
        opening = nullptr;
        c.state = ConnState::open;  // leaves opening, so that start_closing takes effect
        // The server could not connect to the remote port: the client sees a closed
        // connection and the forward goes on.
        ++stats.refused;
        util::debug("forward " + specs[c.listener].describe() +
                    ": the server refused the channel: " + last_error());
        start_closing(c);
        progress = true;
      }
    }
    if (c.state == ConnState::open) {
      progress |= pump_channel(c);
    }
    return progress;
  }

  bool pump_channel(Conn& c) {
    bool progress = false;
    // Buffer -> channel. libssh2 sends at most one packet per call and answers EAGAIN when the
    // server's window is used up.
    while (!c.to_remote.empty() && !c.eof_sent && may_call(c, Op::write)) {
      ssize_t rc = libssh2_channel_write(c.channel, c.to_remote.front(), c.to_remote.size());
      after_call(c, Op::write, rc);
      if (rc > 0) {
        c.to_remote.consume(static_cast<std::size_t>(rc));
        progress = true;
        continue;
      }
      if (rc == LIBSSH2_ERROR_EAGAIN) {
        break;
      }
      if (!is_channel_error(rc)) {
        lost(rc);
      }
      start_closing(c);  // the server closed the channel while the client still sends
      return true;
    }
    if (c.client_eof && c.to_remote.empty() && !c.eof_sent && may_call(c, Op::eof)) {
      int rc = libssh2_channel_send_eof(c.channel);
      after_call(c, Op::eof, rc);
      if (rc != LIBSSH2_ERROR_EAGAIN) {
        if (rc != 0 && !is_channel_error(rc)) {
          lost(rc);
        }
        c.eof_sent = true;
        progress = true;
      }
    }
    // Channel -> buffer, only while the buffer has room: what we do not read stays in the
    // channel window, which then stops the server.
    while (!c.remote_eof && c.to_client.space() > 0 && may_call(c, Op::read)) {
      ssize_t rc = libssh2_channel_read(c.channel, c.to_client.back(), c.to_client.space());
      after_call(c, Op::read, rc);
      if (rc > 0) {
        c.to_client.commit(static_cast<std::size_t>(rc));
        progress = true;
        continue;
      }
      if (rc == 0) {
        // 0 is also what libssh2 answers after finishing a window adjustment; only EOF counts,
        // otherwise the next round reads again.
        if (libssh2_channel_eof(c.channel) != 0) {
          c.remote_eof = true;
        }
        progress = true;
        break;
      }
      if (rc == LIBSSH2_ERROR_EAGAIN) {
        break;
      }
      if (!is_channel_error(rc)) {
        lost(rc);
      }
      start_closing(c);
      return true;
    }
    // Try the client once more: the read above may have filled its buffer.
    while (!c.to_client.empty() && !c.client_gone) {
      ssize_t n = ::send(c.client.get(), c.to_client.front(), c.to_client.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          c.client_gone = true;
          start_closing(c);
          return true;
        }
        break;
      }
      c.to_client.consume(static_cast<std::size_t>(n));
      progress = true;
    }
    if (c.remote_eof && c.to_client.empty() && !c.client_shut) {
      ::shutdown(c.client.get(), SHUT_WR);
      c.client_shut = true;
      progress = true;
    }
    if (c.client_shut && (c.eof_sent || c.client_gone)) {
      start_closing(c);
      progress = true;
    } else if (c.client_shut && c.client_eof && c.to_remote.empty()) {
      start_closing(c);
      progress = true;
    }
    return progress;
  }

  /// One pass over every connection; closes and drops the finished ones.
  bool pump_all() {
    bool progress = false;
    // The connection holding the half-sent packet goes first: nothing else may send before it.
    if (blocked_conn != nullptr) {
      progress |= pump(*blocked_conn);
    }
    for (auto it = conns.begin(); it != conns.end();) {
      Conn& c = *it;
      if (&c != blocked_conn) {
        progress |= pump(c);
      }
      if (c.state == ConnState::closing && free_channel(c)) {
        if (blocked_conn == &c) {
          blocked_conn = nullptr;
          blocked_op = Op::none;
        }
        it = conns.erase(it);  // closes the client socket
        progress = true;
      } else {
        ++it;
      }
    }
    return progress;
  }

  void accept_from(std::size_t index) {
    while (conns.size() < options.max_connections) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd = ::accept4(listeners[index].get(), reinterpret_cast<sockaddr*>(&peer), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;
      }
      Socket client(fd);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char host[NI_MAXHOST] = "127.0.0.1";
      char service[NI_MAXSERV] = "0";
      ::getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof host, service,
                    sizeof service, NI_NUMERICHOST | NI_NUMERICSERV);
      const ForwardSpec& spec = specs[index];
      conns.emplace_back(
          std::move(client), index, options.buffer_bytes,
          direct_tcpip_message(spec.remote_host, spec.remote_port, host, std::atoi(service)));
      ++stats.connections;
    }
  }

  /// Serves over the current session until it fails (throws SessionLost) or stop is asked.
  void serve() {
    LIBSSH2_SESSION* s = raw();
    int fd = session->socket_fd();
    libssh2_session_set_blocking(s, 0);
    // No SSH keepalives here: libssh2_keepalive_send sends from a stack buffer and marks itself
    // sent even when it got EAGAIN, which would leave a half-sent packet that blocks every
    // channel. TCP keepalives keep NAT mappings alive and, with TCP_USER_TIMEOUT for data in
    // flight, notice a network that silently went away.
    libssh2_keepalive_config(s, 0, 0);
    int idle = static_cast<int>(options.keepalive.count());
    int interval = 5;
    int count = 6;
    unsigned user_timeout = k_user_timeout_ms;
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);

    std::vector<pollfd> fds;
    std::vector<Conn*> polled;
    while (!options.stop_requested()) {
      // Drive everything until nothing moves: libssh2 may hold decrypted data that poll()
      // cannot see.
      for (int round = 0; round < 64 && pump_all(); ++round) {
      }

      fds.clear();
      polled.clear();
      short session_events = POLLRDHUP;
      bool wants_inbound = false;
      for (Conn& c : conns) {
        if (c.state == ConnState::opening || c.state == ConnState::closing ||
            (c.state == ConnState::open &&
             ((!c.remote_eof && c.to_client.space() > 0) || !c.to_remote.empty() ||
              (c.client_eof && !c.eof_sent)))) {
          wants_inbound = true;
        }
      }
      int directions = libssh2_session_block_directions(s);
      if (blocked_conn != nullptr || (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0) {
        session_events |= POLLOUT;
      }
      // While a packet is half sent nothing may read, so readable data would only spin.
      if (wants_inbound && blocked_conn == nullptr) {
        session_events |= POLLIN;
      }
      fds.push_back({fd, session_events, 0});
      bool accepting = conns.size() < options.max_connections;
      for (const Socket& l : listeners) {
        fds.push_back({l.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
      }
      for (Conn& c : conns) {
        short events = 0;
        if (!c.client_eof && !c.client_gone && c.state != ConnState::closing &&
            c.to_remote.space() > 0) {
          events |= POLLIN;
        }
        if (!c.to_client.empty() && !c.client_gone) {
          events |= POLLOUT;
        }
        fds.push_back({c.client.get(), events, 0});
        polled.push_back(&c);
      }
      int n = ::poll(fds.data(), fds.size(), k_poll_timeout_ms);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        throw Error("forward", "poll failed", errno_text(errno));
      }
      if ((fds[0].revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        throw SessionLost{err != 0 ? errno_text(err) : "the server closed the connection"};
      }
      for (std::size_t i = 0; i < listeners.size(); ++i) {
        if ((fds[1 + i].revents & POLLIN) != 0) {
          accept_from(i);
        }
      }
    }
  }

  /// Frees every channel and the session. With dead = true the socket is shut down first, so
  /// nothing waits on a peer that is gone.
  void drop_session(bool dead) {
    if (!session) {
      return;
    }
    LIBSSH2_SESSION* s = raw();
    if (dead) {
      ::shutdown(session->socket_fd(), SHUT_RDWR);
    }
    libssh2_session_set_timeout(s, k_teardown_timeout_ms);
    libssh2_session_set_blocking(s, 1);
    for (Conn& c : conns) {
      c.client = Socket();  // the client sees its connection end cleanly (FIN)
      if (c.channel != nullptr) {
        libssh2_channel_free(c.channel);
        c.channel = nullptr;
      }
    }
    conns.clear();
    blocked_conn = nullptr;
    blocked_op = Op::none;
    opening = nullptr;
    session.reset();
  }

  // The OpenSSH client that carries the bytes (unset: libssh2 does), and its data plane.
  std::optional<std::string> openssh;
  std::unique_ptr<OpenSshPlane> plane;
};

Forwarder::Forwarder(std::vector<ForwardSpec> specs, ForwarderOptions options)
    : m_impl(std::make_unique<Impl>()) {
  m_impl->options = std::move(options);
  if (!m_impl->options.stop_requested) {
    m_impl->options.stop_requested = [] { return false; };
  }
  if (!m_impl->options.notice) {
    m_impl->options.notice = [](const std::string& line) { util::warn(line); };
  }
  for (ForwardSpec& spec : specs) {
    int err = 0;
    BoundListener l = bind_listener(spec.local_addr, spec.local_port, err);
    if (l.socket.get() < 0) {
      std::string subject = "local port " + spec.local_addr + ":" + std::to_string(spec.local_port);
      if (err == EADDRINUSE) {
        int free_port = suggest_free_port(spec.local_addr, 0);
        throw UsageError(subject, "already in use",
                         "pick another local port, e.g. " + std::to_string(free_port) + ":" +
                             spec.remote_host + ":" + std::to_string(spec.remote_port) + " (" +
                             std::to_string(free_port) + " is free now)");
      }
      throw UsageError(subject, "cannot listen: " + errno_text(err),
                       "use a local address of this machine (default 127.0.0.1) and a port above "
                       "1023");
    }
    spec.local_port = l.port;
    m_impl->listeners.push_back(std::move(l.socket));
  }
  m_impl->specs = std::move(specs);
  if (m_impl->options.openssh_login) {
    m_impl->openssh = openssh_for_forwards();
  }
}

Forwarder::~Forwarder() {
  m_impl->drop_session(false);
}

const std::vector<ForwardSpec>& Forwarder::specs() const {
  return m_impl->specs;
}

ForwardStats Forwarder::stats() const {
  return m_impl->stats;
}

bool Forwarder::uses_openssh() const {
  return m_impl->openssh.has_value();
}

void Forwarder::start(std::unique_ptr<Session> session) {
  Impl& impl = *m_impl;
  if (impl.openssh) {
    session.reset();  // a verb's own session; OpenSSH logs in by itself
    impl.plane = std::make_unique<OpenSshPlane>(*impl.openssh, impl.specs, impl.listeners,
                                                impl.options, impl.stats);
    impl.plane->start();
    return;
  }
  impl.session = std::move(session);
}

void Forwarder::run(std::unique_ptr<Session> session) {
  start(std::move(session));
  run();
}

void Forwarder::run() {
  // A client or server that vanishes mid-write must be an error code, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  Impl& impl = *m_impl;
  if (impl.plane) {
    impl.plane->run();
    return;
  }
  milliseconds backoff = impl.options.first_backoff;
  while (!impl.options.stop_requested()) {
    if (impl.session) {
      try {
        impl.serve();
        break;  // stop requested
      } catch (const SessionLost& e) {
        impl.drop_session(true);
        impl.options.notice("connection lost (" + e.cause + "); open connections closed, " +
                            "reconnecting");
      }
    }
    if (!sleep_unless_stopped(impl.options.stop_requested, backoff)) {
      break;
    }
    try {
      impl.session = impl.options.reconnect();
      ++impl.stats.reconnects;
      backoff = impl.options.first_backoff;
      impl.options.notice("reconnected; forwarding again");
    } catch (const Error& e) {
      backoff = std::min(backoff * 2, impl.options.max_backoff);
      impl.options.notice(reconnect_failed_notice(e.what(), backoff));
    }
  }
  impl.drop_session(false);
}

}  // namespace gm::ssh
