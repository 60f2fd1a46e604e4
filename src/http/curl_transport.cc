#include "http/curl_transport.h"

#include "gm/error.h"
#include "util/interrupt.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

namespace gm::http {

namespace {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// Header bytes kept per response (curl bounds single lines; this bounds their number).
constexpr std::size_t k_max_header_bytes = 256 * 1024;

struct Exchange {
  Response response;
  std::size_t max_body = 0;
  std::size_t header_bytes = 0;
  bool too_big = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  if (exchange->response.body.size() + size * count > exchange->max_body) {
    exchange->too_big = true;
    return 0;  // curl ends the transfer with CURLE_WRITE_ERROR
  }
  exchange->response.body.append(data, size * count);
  return size * count;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return util::interrupt_requested() ? 1 : 0;  // non-zero: CURLE_ABORTED_BY_CALLBACK
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* exchange = static_cast<Exchange*>(user);
  std::string_view line(data, size * count);
  exchange->header_bytes += line.size();
  if (exchange->header_bytes > k_max_header_bytes) {
    exchange->too_big = true;
    return 0;
  }
  // A new status line starts a new header block (100 Continue, proxy CONNECT): keep only the
  // final response's headers.
  if (line.rfind("HTTP/", 0) == 0) {
    exchange->response.headers.clear();
    return line.size();
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return line.size();
  }
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ' ||
                            value.back() == '\t')) {
    value.remove_suffix(1);
  }
  exchange->response.headers.emplace_back(std::move(name), std::string(value));
  return line.size();
}

TransportError::Kind kind_of(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return TransportError::Kind::connect;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::Kind::timeout;
    default:
      return TransportError::Kind::io;
  }
}

}  // namespace

struct CurlTransport::Handle {
  EasyPtr easy;
  char error[CURL_ERROR_SIZE] = {};
};

CurlOptions CurlOptions::from_env() {
  CurlOptions options;
  if (const char* bundle = std::getenv("AWS_CA_BUNDLE"); bundle != nullptr && *bundle != '\0') {
    options.ca_bundle = bundle;
  }
  return options;
}

CurlTransport::CurlTransport(CurlOptions options)
    : m_options(std::move(options)), m_handle(std::make_unique<Handle>()) {
  global_init_once();
  m_handle->easy.reset(curl_easy_init());
  if (!m_handle->easy) {
    throw TransportError(TransportError::Kind::connect, "", "curl_easy_init failed");
  }
}

CurlTransport::~CurlTransport() = default;

Response CurlTransport::send(const Request& request) {
  CURL* easy = m_handle->easy.get();
  // reset() clears the options of the previous call but keeps the connection cache: that is
  // how one handle gives keep-alive across calls.
  curl_easy_reset(easy);
  m_handle->error[0] = '\0';
  Exchange exchange;
  exchange.max_body = m_options.max_body_bytes;

  SlistPtr headers;
  auto append = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr) {
      throw TransportError(TransportError::Kind::connect, "", "out of memory building headers");
    }
    (void)headers.release();
    headers.reset(next);
  };
  for (const auto& [name, value] : request.headers) {
    // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
    append(value.empty() ? name + ";" : name + ": " + value);
  }
  // curl would add "Expect: 100-continue" to larger bodies, costing a round trip.
  append("Expect:");

  auto timeout = request.timeout.value_or(m_options.total_timeout);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, m_handle->error);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  if (m_options.ca_bundle) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, m_options.ca_bundle->c_str());
  }
  // CURLOPT_PROXY is deliberately left unset: libcurl then honours HTTPS_PROXY / NO_PROXY.
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min(m_options.connect_timeout, timeout).count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  // "Below 1 byte/s for stall_timeout" is curl's way to say "nothing moved".
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(
      easy, CURLOPT_LOW_SPEED_TIME,
      static_cast<long>(std::max<long long>(
          1, std::chrono::ceil<std::chrono::seconds>(m_options.stall_timeout).count())));
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &exchange);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &exchange);

  if (request.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    // POSTFIELDS sends the exact bytes we signed; CUSTOMREQUEST swaps the verb for PUT etc.
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != "POST") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  CURLcode code = curl_easy_perform(easy);
  long new_connections = 0;
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &new_connections);
  m_connections_opened += new_connections;
  if (code == CURLE_ABORTED_BY_CALLBACK) {
    throw InterruptedError("request to " + request.url);
  }
  if (exchange.too_big) {
    // Not worth resending: the same endpoint would send the same flood.
    throw TransportError(TransportError::Kind::too_large, request.url,
                         "the response is larger than " +
                             std::to_string(m_options.max_body_bytes / (1024 * 1024)) +
                             " MiB (body) or " + std::to_string(k_max_header_bytes / 1024) +
                             " KiB (headers); no API answer is that big");
  }
  if (code != CURLE_OK) {
    std::string text = m_handle->error[0] != '\0' ? m_handle->error : curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT) {
      long received = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &received);
      text += received == 0 ? " (the endpoint accepted the request but did not answer)"
                            : " (the answer stalled)";
    }
    throw TransportError(kind_of(code), request.url, text);
  }
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  exchange.response.status = static_cast<int>(status);
  return std::move(exchange.response);
}

}  // namespace gm::http
