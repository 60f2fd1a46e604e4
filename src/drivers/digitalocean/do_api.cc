#include "drivers/digitalocean/do_api.h"

#include "gm/error.h"
#include "http/curl_transport.h"
#include "http/url.h"
#include "util/crypto.h"
#include "util/fs.h"
#include "util/log.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace gm::drivers::digitalocean {

namespace {

using std::chrono::milliseconds;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::optional<std::string>(value) : std::nullopt;
}

std::filesystem::path doctl_config_path() {
  if (auto xdg = env("XDG_CONFIG_HOME")) {
    return std::filesystem::path(*xdg) / "doctl" / "config.yaml";
  }
  return std::filesystem::path(env("HOME").value_or("")) / ".config" / "doctl" / "config.yaml";
}

/// doctl's lookup (facts 1.2): context empty or "default": access-token; else auth-contexts.
std::string doctl_token(const std::filesystem::path& path) {
  std::optional<std::string> text = util::try_read_file(path);
  if (!text) {
    return {};
  }
  try {
    YAML::Node root = YAML::Load(*text);
    std::string context = root["context"] ? root["context"].as<std::string>() : "";
    std::transform(context.begin(), context.end(), context.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (context.empty() || context == "default") {
      return root["access-token"] ? root["access-token"].as<std::string>() : "";
    }
    YAML::Node contexts = root["auth-contexts"];
    return contexts && contexts[context] ? contexts[context].as<std::string>() : "";
  } catch (const YAML::Exception& e) {
    throw Error("doctl config " + path.string(), "cannot be read", e.what(),
                "fix the file, or set DIGITALOCEAN_ACCESS_TOKEN");
  }
}

std::optional<std::int64_t> page_of(const std::string& url) {
  for (std::string_view key : {"?page=", "&page="}) {
    if (auto at = url.find(key); at != std::string::npos) {
      std::int64_t n = 0;
      const char* begin = url.data() + at + key.size();
      auto [end, ec] = std::from_chars(begin, url.data() + url.size(), n);
      if (ec == std::errc{} && end != begin) {
        return n;
      }
    }
  }
  return std::nullopt;
}

/// Seconds to wait before a throttled request may go again: retry-after, else (hourly limit
/// spent) until ratelimit-reset.
std::optional<milliseconds> wait_hint(const http::Response& response) {
  auto number = [](const std::string& text) -> std::optional<long long> {
    long long n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    return ec == std::errc{} && end == text.data() + text.size() && n >= 0
               ? std::optional<long long>(n)
               : std::nullopt;
  };
  if (auto after = response.header("retry-after")) {
    if (auto s = number(*after)) {
      return milliseconds(*s * 1000);
    }
  }
  if (response.header("ratelimit-remaining") == "0") {
    if (auto reset = response.header("ratelimit-reset"); reset && number(*reset)) {
      auto now = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
      return milliseconds(std::max(0LL, *number(*reset) - now) * 1000);
    }
  }
  return std::nullopt;
}

std::string str(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

Droplet droplet_from(const nlohmann::json& j) {
  Droplet d;
  d.id = j.value("id", std::int64_t{0});
  d.name = str(j, "name");
  d.status = str(j, "status");
  d.size_slug = str(j, "size_slug");
  d.created_at = str(j, "created_at");
  if (j.contains("region") && j["region"].is_object()) {
    d.region = str(j["region"], "slug");
  }
  if (j.contains("tags") && j["tags"].is_array()) {
    d.tags = j["tags"].get<std::vector<std::string>>();
  }
  if (j.contains("networks") && j["networks"].contains("v4")) {
    for (const auto& n : j["networks"]["v4"]) {
      if (str(n, "type") == "public") {
        d.public_ip = str(n, "ip_address");
        break;
      }
    }
  }
  return d;
}

Action action_from(const nlohmann::json& j) {
  return {.id = j.value("id", std::int64_t{0}), .type = str(j, "type"), .status = str(j, "status")};
}

SshKey key_from(const nlohmann::json& j) {
  return {.id = j.value("id", std::int64_t{0}),
          .fingerprint = str(j, "fingerprint"),
          .name = str(j, "name")};
}

Firewall firewall_from(const nlohmann::json& j) {
  Firewall f{.id = str(j, "id"), .name = str(j, "name"), .status = str(j, "status")};
  if (j.contains("tags") && j["tags"].is_array()) {
    f.tags = j["tags"].get<std::vector<std::string>>();
  }
  f.inbound_rules = j.value("inbound_rules", nlohmann::json::array());
  return f;
}

std::string url_encode(const std::string& s) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 0xf];
    }
  }
  return out;
}

}  // namespace

bool Droplet::has_tag(const std::string& tag) const {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

std::string api_base_url() {
  if (auto url = env("DIGITALOCEAN_API_URL")) {
    return http::validate_endpoint(*url, "DIGITALOCEAN_API_URL");
  }
  return "https://api.digitalocean.com";
}

std::optional<std::string> find_token() {
  std::string token = env("DIGITALOCEAN_ACCESS_TOKEN").value_or("");
  if (token.empty()) {
    token = doctl_token(doctl_config_path());
  }
  if (token.empty()) {
    return std::nullopt;
  }
  util::add_secret(token);
  return token;
}

std::string access_token() {
  std::optional<std::string> token = find_token();
  if (!token) {
    std::filesystem::path config = doctl_config_path();
    throw Error(
        "digitalocean", "no API token",
        "DIGITALOCEAN_ACCESS_TOKEN is not set and " + config.string() + " has no access-token",
        "create a token (with droplet, ssh_key, firewall and tag scopes) at "
        "https://cloud.digitalocean.com/account/api/tokens and export "
        "DIGITALOCEAN_ACCESS_TOKEN=..., or run `doctl auth init`");
  }
  return *token;
}

std::string key_fingerprint(const std::string& openssh_public_key) {
  auto first = openssh_public_key.find(' ');
  auto second = openssh_public_key.find_first_of(" \n", first + 1);
  std::string blob = util::base64_decode(openssh_public_key.substr(first + 1, second - first - 1));
  std::string hexed = util::hex(util::md5(blob));
  std::string out;
  for (std::size_t i = 0; i < hexed.size(); i += 2) {
    out += (i == 0 ? "" : ":") + hexed.substr(i, 2);
  }
  return out;
}

DoApi::DoApi(std::string token, std::string base_url, std::unique_ptr<http::Transport> transport,
             http::RetryPolicy::Sleep sleep)
    : m_token(std::move(token)),
      m_base(std::move(base_url)),
      m_transport(transport ? std::move(transport) : std::make_unique<http::CurlTransport>()),
      m_curl(m_transport != nullptr && dynamic_cast<http::CurlTransport*>(m_transport.get())),
      // godo retries 4 times (facts 1.4); the policy's delays and quota are the shared ones.
      m_retry(http::RetrySettings{.max_attempts = 5}, std::move(sleep)) {}

DoApi DoApi::from_env() {
  std::string base = api_base_url();
  return DoApi(access_token(), base);
}

std::optional<nlohmann::json> DoApi::call(const std::string& method, const std::string& path,
                                          const std::string& query, const nlohmann::json* body,
                                          bool missing_ok) {
  http::Request request;
  request.method = method;
  request.url = m_base + path + (query.empty() ? "" : "?" + query);
  request.headers = {{"Authorization", "Bearer " + m_token}, {"Accept", "application/json"}};
  if (body != nullptr) {
    request.body = body->dump();
    request.headers.push_back({"Content-Type", "application/json"});
  }
  // libcurl silently resends a request whose kept-alive connection turns out dead; a POST that
  // reached the API (a droplet made, its answer lost) must never go twice, so a POST always gets
  // a connection of its own.
  std::unique_ptr<http::Transport> fresh;
  if (method == "POST" && m_curl) {
    fresh = std::make_unique<http::CurlTransport>();
  }
  http::Transport& transport = fresh ? *fresh : *m_transport;
  const std::string action = method + " " + path;
  util::debug("digitalocean: " + action + (query.empty() ? "" : "?" + query));
  http::Response response =
      m_retry.execute([&](int) { return transport.send(request); },
                      [](const http::Response& r) -> std::optional<http::Failure> {
                        if (r.status < 400) {
                          return std::nullopt;
                        }
                        http::Failure failure{.http_status = r.status, .retry_after = wait_hint(r)};
                        return failure;
                      },
                      method != "POST");
  if (response.status == 404 && missing_ok) {
    return std::nullopt;
  }
  nlohmann::json parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (response.status >= 400) {
    std::string code = parsed.is_object() ? str(parsed, "id") : "";
    std::string message = parsed.is_object() ? (parsed.contains("message") ? str(parsed, "message")
                                                                           : str(parsed, "error"))
                                             : response.body.substr(0, 200);
    std::string request_id = parsed.is_object() ? str(parsed, "request_id") : "";
    if (request_id.empty()) {
      request_id = response.header("x-request-id").value_or("");
    }
    std::string hint;
    if (response.status == 401) {
      hint = "the token was refused: check DIGITALOCEAN_ACCESS_TOKEN (or doctl's config)";
    } else if (response.status == 403) {
      hint = "the token lacks a scope: give it droplet, ssh_key, firewall and tag access";
    } else if (response.status == 429) {
      hint = "DigitalOcean's rate limit (250/minute, 5000/hour): wait a minute and retry";
    }
    throw CloudError("digitalocean " + action, response.status, code, message, request_id, hint);
  }
  if (response.body.empty()) {
    return nlohmann::json::object();
  }
  if (parsed.is_discarded()) {
    throw CloudError("digitalocean " + action, response.status, "", "the answer is not JSON",
                     response.header("x-request-id").value_or(""));
  }
  return parsed;
}

std::vector<nlohmann::json> DoApi::list(const std::string& path, const std::string& query,
                                        const std::string& key) {
  std::vector<nlohmann::json> out;
  std::int64_t page = 1;
  while (true) {
    std::string q =
        (query.empty() ? "" : query + "&") + "per_page=200&page=" + std::to_string(page);
    nlohmann::json body = *call("GET", path, q, nullptr, false);
    for (auto& item : body.value(key, nlohmann::json::array())) {
      out.push_back(std::move(item));
    }
    // Absolute URLs of the real host: only the page number is taken (facts 1.5).
    const nlohmann::json next = body.contains("links") && body["links"].contains("pages")
                                    ? body["links"]["pages"].value("next", nlohmann::json())
                                    : nlohmann::json();
    std::optional<std::int64_t> next_page =
        next.is_string() ? page_of(next.get<std::string>()) : std::nullopt;
    if (!next_page || *next_page <= page) {
      return out;
    }
    page = *next_page;
  }
}

std::vector<Size> DoApi::sizes() {
  std::vector<Size> out;
  for (const auto& j : list("/v2/sizes", "", "sizes")) {
    Size s{.slug = str(j, "slug"),
           .description = str(j, "description"),
           .vcpus = j.value("vcpus", 0),
           .memory_mib = j.value("memory", 0L),
           .disk_gb = j.value("disk", 0),
           .price_hourly = j.value("price_hourly", 0.0),
           .price_monthly = j.value("price_monthly", 0.0),
           .regions = j.value("regions", std::vector<std::string>{}),
           .available = j.value("available", false)};
    if (j.contains("gpu_info") && j["gpu_info"].is_object()) {
      s.gpu_count = j["gpu_info"].value("count", 0);
      s.gpu_model = str(j["gpu_info"], "model");
      if (j["gpu_info"].contains("vram")) {
        s.gpu_vram_gib = j["gpu_info"]["vram"].value("amount", 0L);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<Droplet> DoApi::droplet(std::int64_t id) {
  auto body = call("GET", "/v2/droplets/" + std::to_string(id), "", nullptr, true);
  if (!body) {
    return std::nullopt;
  }
  return droplet_from((*body)["droplet"]);
}

std::vector<Droplet> DoApi::droplets_tagged(const std::string& tag) {
  std::vector<Droplet> out;
  for (const auto& j : list("/v2/droplets", "tag_name=" + url_encode(tag), "droplets")) {
    out.push_back(droplet_from(j));
  }
  for (const auto& j : list("/v2/droplets", "type=gpus", "droplets")) {
    Droplet d = droplet_from(j);
    bool seen = std::any_of(out.begin(), out.end(), [&](const Droplet& o) { return o.id == d.id; });
    if (d.has_tag(tag) && !seen) {
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::pair<Droplet, std::int64_t> DoApi::create_droplet(const DropletCreate& r) {
  nlohmann::json body = {{"name", r.name},           {"size", r.size},         {"image", r.image},
                         {"region", r.region},       {"ssh_keys", r.ssh_keys}, {"tags", r.tags},
                         {"user_data", r.user_data}, {"monitoring", false}};
  nlohmann::json out = *call("POST", "/v2/droplets", "", &body, false);
  std::int64_t action = 0;
  if (out.contains("links") && out["links"].contains("actions") &&
      !out["links"]["actions"].empty()) {
    action = out["links"]["actions"][0].value("id", std::int64_t{0});
  }
  return {droplet_from(out["droplet"]), action};
}

bool DoApi::delete_droplet(std::int64_t id) {
  return call("DELETE", "/v2/droplets/" + std::to_string(id), "", nullptr, true).has_value();
}

Action DoApi::droplet_action(std::int64_t droplet_id, const std::string& type) {
  nlohmann::json body = {{"type", type}};
  return action_from((*call("POST", "/v2/droplets/" + std::to_string(droplet_id) + "/actions", "",
                            &body, false))["action"]);
}

Action DoApi::action(std::int64_t id) {
  return action_from(
      (*call("GET", "/v2/actions/" + std::to_string(id), "", nullptr, false))["action"]);
}

std::optional<SshKey> DoApi::key(const std::string& id_or_fingerprint) {
  auto body = call("GET", "/v2/account/keys/" + id_or_fingerprint, "", nullptr, true);
  return body ? std::optional<SshKey>(key_from((*body)["ssh_key"])) : std::nullopt;
}

SshKey DoApi::create_key(const std::string& name, const std::string& public_key) {
  nlohmann::json body = {{"name", name}, {"public_key", public_key}};
  return key_from((*call("POST", "/v2/account/keys", "", &body, false))["ssh_key"]);
}

bool DoApi::delete_key(const std::string& id_or_fingerprint) {
  return call("DELETE", "/v2/account/keys/" + id_or_fingerprint, "", nullptr, true).has_value();
}

std::vector<SshKey> DoApi::keys() {
  std::vector<SshKey> out;
  for (const auto& j : list("/v2/account/keys", "", "ssh_keys")) {
    out.push_back(key_from(j));
  }
  return out;
}

void DoApi::create_tag(const std::string& name) {
  nlohmann::json body = {{"name", name}};
  call("POST", "/v2/tags", "", &body, false);
}

bool DoApi::delete_tag(const std::string& name) {
  return call("DELETE", "/v2/tags/" + url_encode(name), "", nullptr, true).has_value();
}

Firewall DoApi::create_firewall(const std::string& name, const std::vector<std::string>& tags,
                                const nlohmann::json& inbound, const nlohmann::json& outbound) {
  nlohmann::json body = {
      {"name", name}, {"tags", tags}, {"inbound_rules", inbound}, {"outbound_rules", outbound}};
  return firewall_from((*call("POST", "/v2/firewalls", "", &body, false))["firewall"]);
}

Firewall DoApi::replace_firewall(const std::string& id, const std::string& name,
                                 const std::vector<std::string>& tags,
                                 const nlohmann::json& inbound, const nlohmann::json& outbound) {
  nlohmann::json body = {
      {"name", name}, {"tags", tags}, {"inbound_rules", inbound}, {"outbound_rules", outbound}};
  return firewall_from((*call("PUT", "/v2/firewalls/" + id, "", &body, false))["firewall"]);
}

std::optional<Firewall> DoApi::firewall(const std::string& id) {
  auto body = call("GET", "/v2/firewalls/" + id, "", nullptr, true);
  return body ? std::optional<Firewall>(firewall_from((*body)["firewall"])) : std::nullopt;
}

std::vector<Firewall> DoApi::firewalls() {
  std::vector<Firewall> out;
  for (const auto& j : list("/v2/firewalls", "", "firewalls")) {
    out.push_back(firewall_from(j));
  }
  return out;
}

bool DoApi::delete_firewall(const std::string& id) {
  return call("DELETE", "/v2/firewalls/" + id, "", nullptr, true).has_value();
}

}  // namespace gm::drivers::digitalocean
