// Which region and which URL a call goes to. Plain http is refused except to loopback, so a
// mistyped AWS_ENDPOINT_URL cannot send signed requests over the network in the clear.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gm::aws {

/// \a flag (e.g. --ec2-region) > AWS_REGION > AWS_DEFAULT_REGION > the active profile's region.
std::optional<std::string> find_region(std::optional<std::string> flag = std::nullopt);
/// find_region(), or throws gm::UsageError with a hint on how to set one.
std::string load_region(std::optional<std::string> flag = std::nullopt);

/// AWS_ENDPOINT_URL_<SERVICE> (ec2, ssm, sts, pricing) > AWS_ENDPOINT_URL >
/// https://<service>.<region>.amazonaws.com (".com.cn" in China; Pricing's own host). Throws
/// gm::UsageError for a malformed URL or plain http to a non-loopback host.
std::string resolve_endpoint(std::string_view service, std::string_view region);

}  // namespace gm::aws
