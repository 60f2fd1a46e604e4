// CurlTransport against endpoints that misbehave on purpose: an endless body stops at the size
// limit, and an endpoint that accepts and never answers fails at the stall timeout, both as
// TransportErrors the retry policy can classify.
#include "http/curl_transport.h"
#include "http/retry.h"
#include "support/hostile_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace gm::http {
namespace {

using gm::testing::HostileServer;

Request get(const HostileServer& server) {
  Request request;
  request.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  return request;
}

TEST(CurlHostile, EndlessBodyStopsAtTheSizeLimitAndIsNotRetried) {
  HostileServer server(HostileServer::endless_http_body());
  CurlOptions options;
  options.max_body_bytes = 1024 * 1024;
  CurlTransport transport(options);
  try {
    transport.send(get(server));
    ADD_FAILURE() << "an endless body was accepted";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.kind(), TransportError::Kind::too_large);
    EXPECT_NE(std::string(e.what()).find("larger than 1 MiB"), std::string::npos) << e.what();
    Failure failure;
    failure.transport_error = e.kind();
    EXPECT_EQ(RetryPolicy::classify(failure), RetryClass::none);
  }
}

TEST(CurlHostile, SilentEndpointFailsAtTheStallTimeout) {
  HostileServer server(HostileServer::silent());
  CurlOptions options;
  options.stall_timeout = std::chrono::seconds(1);
  CurlTransport transport(options);
  try {
    transport.send(get(server));
    ADD_FAILURE() << "a silent endpoint answered";
  } catch (const TransportError& e) {
    EXPECT_EQ(e.kind(), TransportError::Kind::timeout);
    EXPECT_NE(std::string(e.what()).find("did not answer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gm::http
