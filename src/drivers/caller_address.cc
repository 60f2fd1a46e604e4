#include "drivers/caller_address.h"

#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <regex>

#include "gm/error.h"
#include "http/curl_transport.h"

namespace gm::drivers {

std::optional<std::string> cidr_network(const std::string& text) {
  static const std::regex k_re(R"(^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$)");
  std::smatch m;
  if (!std::regex_match(text, m, k_re)) {
    return std::nullopt;
  }
  std::uint32_t address = 0;
  for (int i = 1; i <= 4; ++i) {
    int octet = std::stoi(m[i]);
    if (octet > 255) {
      return std::nullopt;
    }
    address = address << 8 | static_cast<std::uint32_t>(octet);
  }
  int bits = std::stoi(m[5]);
  if (bits > 32) {
    return std::nullopt;
  }
  std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
  address &= mask;
  return std::to_string(address >> 24) + "." + std::to_string(address >> 16 & 255) + "." +
         std::to_string(address >> 8 & 255) + "." + std::to_string(address & 255) + "/" +
         std::to_string(bits);
}

std::string caller_cidr(std::string_view flag) {
  if (const char* env = std::getenv("GPUMACHINE_CALLER_IP"); env != nullptr && *env != '\0') {
    std::string v = env;
    std::string cidr = v.find('/') == std::string::npos ? v + "/32" : v;
    std::optional<std::string> network = cidr_network(cidr);
    if (!network || *network != cidr) {
      throw UsageError(
          "GPUMACHINE_CALLER_IP '" + v + "'",
          network ? "has bits set after the prefix" : "not an IPv4 address",
          network ? "for the block write " + *network : "e.g. GPUMACHINE_CALLER_IP=203.0.113.5");
    }
    return cidr;
  }
  try {
    http::CurlTransport transport;
    http::Request request;
    request.url = "https://checkip.amazonaws.com/";
    request.timeout = std::chrono::seconds(5);
    http::Response response = transport.send(request);
    std::string ip = response.body;
    while (!ip.empty() && std::isspace(static_cast<unsigned char>(ip.back()))) {
      ip.pop_back();
    }
    if (response.status == 200 && cidr_network(ip + "/32")) {
      return ip + "/32";
    }
    throw Error("caller address", "unexpected answer from checkip.amazonaws.com",
                "HTTP " + std::to_string(response.status));
  } catch (const std::exception& e) {
    throw Error(
        std::string(flag), "cannot find this machine's public address", e.what(),
        "pass the address range SSH comes from, e.g. " + std::string(flag) + " 203.0.113.5/32");
  }
}

}  // namespace gm::drivers
