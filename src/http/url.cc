#include "http/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "gm/error.h"

namespace gm::http {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

[[noreturn]] void bad_url(std::string_view text, std::string_view why) {
  throw UsageError("URL \"" + std::string(text) + "\"", std::string(why),
                   "use an absolute URL such as https://ec2.us-east-1.amazonaws.com");
}
}  // namespace

int Url::effective_port() const {
  if (port != 0) {
    return port;
  }
  return scheme == "https" ? 443 : 80;
}

std::string Url::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool is_default =
      port == 0 || (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  return is_default ? h : h + ":" + std::to_string(port);
}

Url parse_url(std::string_view text) {
  Url url;
  std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    bad_url(text, "not an absolute URL");
  }
  url.scheme = lower(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") {
    bad_url(text, "scheme must be http or https");
  }
  std::string_view rest = text.substr(sep + 3);
  std::size_t end_authority = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end_authority);
  std::string_view after =
      end_authority == std::string_view::npos ? std::string_view{} : rest.substr(end_authority);
  if (authority.find('@') != std::string_view::npos) {
    bad_url(text, "user info in URLs is not supported");
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      bad_url(text, "unterminated IPv6 literal");
    }
    url.host = lower(authority.substr(1, close - 1));
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') {
        bad_url(text, "junk after IPv6 literal");
      }
      port_text = tail.substr(1);
    }
  } else {
    std::size_t colon = authority.rfind(':');
    url.host = lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
    }
  }
  if (url.host.empty()) {
    bad_url(text, "no host");
  }
  if (!port_text.empty()) {
    auto [ptr, ec] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), url.port);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || url.port <= 0 ||
        url.port > 65535) {
      bad_url(text, "bad port");
    }
  }
  std::size_t hash = after.find('#');
  after = after.substr(0, hash);
  std::size_t q = after.find('?');
  url.path = std::string(after.substr(0, q));
  if (q != std::string_view::npos) {
    url.query = std::string(after.substr(q + 1));
  }
  if (url.path.empty()) {
    url.path = "/";
  }
  return url;
}

bool is_loopback_host(std::string_view host) {
  std::string h = lower(host);
  if (h == "localhost" || h == "::1") {
    return true;
  }
  in_addr addr{};
  if (inet_pton(AF_INET, h.c_str(), &addr) == 1) {
    return (ntohl(addr.s_addr) >> 24) == 127;
  }
  in6_addr addr6{};
  if (inet_pton(AF_INET6, h.c_str(), &addr6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&addr6);
  }
  return false;
}

std::string validate_endpoint(std::string_view url, std::string_view origin) {
  Url parsed = parse_url(url);
  if (parsed.scheme == "http" && !is_loopback_host(parsed.host)) {
    throw UsageError(std::string(origin) + " \"" + std::string(url) + "\"",
                     "plain http is only allowed to loopback hosts (127.0.0.0/8, localhost, ::1)",
                     "use https://");
  }
  std::string out(url);
  while (!out.empty() && out.back() == '/') {
    out.pop_back();
  }
  return out;
}

}  // namespace gm::http
