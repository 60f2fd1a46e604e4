#include "aws/endpoints.h"

#include <algorithm>
#include <cctype>

#include "aws/shared_config.h"
#include "gm/error.h"
#include "http/url.h"

namespace gm::aws {

std::optional<std::string> find_region(std::optional<std::string> flag) {
  if (flag && !flag->empty()) {
    return flag;
  }
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (auto value = env(name)) {
      return value;
    }
  }
  if (auto profile = SharedConfig::load().find_profile(active_profile_name())) {
    auto it = profile->find("region");
    if (it != profile->end() && !it->second.empty()) {
      return it->second;
    }
  }
  return std::nullopt;
}

std::string load_region(std::optional<std::string> flag) {
  if (auto region = find_region(std::move(flag))) {
    return *region;
  }
  throw UsageError("AWS region", "not set",
                   "pass --ec2-region, set AWS_REGION, or run \"aws configure set region "
                   "us-east-1\"");
}

std::string resolve_endpoint(std::string_view service, std::string_view region) {
  std::string upper;
  for (char c : service) {
    upper += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  std::string specific = "AWS_ENDPOINT_URL_" + upper;
  if (auto url = env(specific.c_str())) {
    return http::validate_endpoint(*url, specific);
  }
  if (auto url = env("AWS_ENDPOINT_URL")) {
    return http::validate_endpoint(*url, "AWS_ENDPOINT_URL");
  }
  std::string suffix = region.rfind("cn-", 0) == 0 ? ".amazonaws.com.cn" : ".amazonaws.com";
  if (service == "pricing") {
    // The Price List API has its own host name and lives in a few regions only.
    return "https://api.pricing." + std::string(region) + suffix;
  }
  return "https://" + std::string(service) + "." + std::string(region) + suffix;
}

}  // namespace gm::aws
