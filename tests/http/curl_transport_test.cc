#include "http/curl_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "support/loopback_server.h"

namespace gm::http {
namespace {

using namespace std::chrono_literals;

TEST(HttpCurl, RoundTripSendsHeadersAndBodyAndLowercasesResponseHeaders) {
  test::LoopbackServer server;
  CurlTransport transport;
  Request request;
  request.method = "POST";
  request.url = server.url() + "/echo";
  request.headers = {{"X-Test-Header", "hello world"}, {"Content-Type", "text/plain"}};
  request.body = "payload=1&x=%2B";
  Response response = transport.send(request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "POST payload=1&x=%2B");
  EXPECT_EQ(response.header("x-seen-x-test-header"), "hello world");
  // The Expect header is suppressed, so no 100-continue round trip happens.
  EXPECT_FALSE(response.header("x-seen-expect").has_value());
  for (const auto& [name, value] : response.headers) {
    for (char c : name) {
      EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
    }
  }
}

TEST(HttpCurl, PutGetAndErrorStatusesAreResponses) {
  test::LoopbackServer server;
  CurlTransport transport;
  Request put;
  put.method = "PUT";
  put.url = server.url() + "/echo";
  EXPECT_EQ(transport.send(put).body, "PUT ");
  Request get;
  get.url = server.url() + "/status?code=503";
  EXPECT_EQ(transport.send(get).status, 503);
}

TEST(HttpCurl, ReusesOneConnectionAcrossCalls) {
  test::LoopbackServer server;
  CurlTransport transport;
  Request request;
  request.url = server.url() + "/echo";
  std::optional<std::string> port;
  for (int i = 0; i < 5; ++i) {
    Response response = transport.send(request);
    ASSERT_EQ(response.status, 200);
    if (!port) {
      port = response.header("x-client-port");
    }
    // Same client port on the server side: the same TCP connection.
    EXPECT_EQ(response.header("x-client-port"), port) << "call " << i;
  }
  EXPECT_EQ(transport.connections_opened(), 1);
}

TEST(HttpCurl, TimeoutIsATransportErrorOfKindTimeout) {
  test::LoopbackServer server;
  CurlTransport transport;
  Request request;
  request.url = server.url() + "/sleep?ms=3000";
  request.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  try {
    transport.send(request);
    FAIL() << "expected a timeout";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.kind(), TransportError::Kind::timeout);
    EXPECT_NE(std::string(e.what()).find("imed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  // The handle stays usable after a failure.
  request.url = server.url() + "/echo";
  request.timeout.reset();
  EXPECT_EQ(transport.send(request).status, 200);
}

TEST(HttpCurl, RefusedConnectionIsKindConnectWithCurlText) {
  // A port that was just free: bind, read the port, close.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  CurlTransport transport;
  Request request;
  request.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/";
  try {
    transport.send(request);
    FAIL() << "expected connection refused";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.kind(), TransportError::Kind::connect);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gm::http
