// The narrow typed slice of the DigitalOcean API v2 the digitalocean driver uses (facts:
// ../shared/spec/digitalocean-api.md): sizes, droplets and their actions, account SSH keys, cloud
// firewalls and tags, over http::Transport with the one retry policy (429 honouring retry-after /
// ratelimit-reset, 5xx). Lists are fetched whole, 200 per page, following links.pages.next
// against the configured base URL. The token is registered as a secret and never leaves here
// except in the Authorization header.
#pragma once

#include "http/retry.h"
#include "http/transport.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gm::drivers::digitalocean {

/// API base URL: $DIGITALOCEAN_API_URL (doctl's and Terraform's override; tests point it at the
/// emulator) or https://api.digitalocean.com. Plain http only to loopback.
std::string api_base_url();

/// The token when one is configured (environment or doctl's config), else nullopt.
std::optional<std::string> find_token();

/// The token: $DIGITALOCEAN_ACCESS_TOKEN, else doctl's config file ($XDG_CONFIG_HOME or
/// ~/.config, doctl/config.yaml: `access-token`, or `auth-contexts[context]`). Registered with
/// util::add_secret. Throws Error with a hint when there is none.
std::string access_token();

/// One entry of GET /v2/sizes.
struct Size {
  std::string slug;
  std::string description;
  int vcpus = 0;
  long memory_mib = 0;
  int disk_gb = 0;
  double price_hourly = 0;
  double price_monthly = 0;
  std::vector<std::string> regions;
  bool available = false;
  int gpu_count = 0;
  std::string gpu_model;  ///< "nvidia_h100"; empty for CPU sizes
  long gpu_vram_gib = 0;  ///< total over all GPUs
};

struct Droplet {
  std::int64_t id = 0;
  std::string name;
  std::string status;  ///< new, active, off, archive
  std::string size_slug;
  std::string region;
  std::string public_ip;  ///< empty until active (facts 2.2)
  std::string created_at;
  std::vector<std::string> tags;
  bool has_tag(const std::string& tag) const;
};

struct Action {
  std::int64_t id = 0;
  std::string type;
  std::string status;  ///< in-progress, completed, errored
};

struct SshKey {
  std::int64_t id = 0;
  std::string fingerprint;
  std::string name;
};

struct Firewall {
  std::string id;
  std::string name;
  std::string status;  ///< waiting, succeeded, failed
  std::vector<std::string> tags;
  nlohmann::json inbound_rules;
};

struct DropletCreate {
  std::string name;
  std::string size;
  std::string image;
  std::string region;
  std::vector<std::int64_t> ssh_keys;
  std::vector<std::string> tags;
  std::string user_data;
};

/// DigitalOcean's key fingerprint: MD5 of the key blob, lowercase colon-hex (facts 5).
std::string key_fingerprint(const std::string& openssh_public_key);

class DoApi {
 public:
  /// Talks to \a base_url with \a token through \a transport (unset: libcurl).
  DoApi(std::string token, std::string base_url,
        std::unique_ptr<http::Transport> transport = nullptr, http::RetryPolicy::Sleep sleep = {});
  /// access_token() and api_base_url().
  static DoApi from_env();

  std::vector<Size> sizes();
  std::optional<Droplet> droplet(std::int64_t id);
  /// Droplets carrying \a tag: `?tag_name=` plus `?type=gpus` filtered here, since GPU droplets
  /// may be left out of tag lists (facts 3.4). Each paginated whole.
  std::vector<Droplet> droplets_tagged(const std::string& tag);
  /// POST /v2/droplets (not retried unless throttled: the API has no idempotency); returns the
  /// droplet and its create action id.
  std::pair<Droplet, std::int64_t> create_droplet(const DropletCreate& request);
  /// DELETE; false when it was already gone (404).
  bool delete_droplet(std::int64_t id);
  Action droplet_action(std::int64_t droplet_id, const std::string& type);
  Action action(std::int64_t id);

  std::optional<SshKey> key(const std::string& id_or_fingerprint);
  SshKey create_key(const std::string& name, const std::string& public_key);
  bool delete_key(const std::string& id_or_fingerprint);
  /// All keys (GET /v2/account/keys is limited to 10 a minute: gc only).
  std::vector<SshKey> keys();

  /// POST /v2/tags (an existing tag is fine).
  void create_tag(const std::string& name);
  bool delete_tag(const std::string& name);

  Firewall create_firewall(const std::string& name, const std::vector<std::string>& tags,
                           const nlohmann::json& inbound, const nlohmann::json& outbound);
  /// PUT: replaces the whole firewall (omitted fields reset, facts 6).
  Firewall replace_firewall(const std::string& id, const std::string& name,
                            const std::vector<std::string>& tags, const nlohmann::json& inbound,
                            const nlohmann::json& outbound);
  std::optional<Firewall> firewall(const std::string& id);
  std::vector<Firewall> firewalls();
  bool delete_firewall(const std::string& id);

 private:
  /// One call through the retry policy; nullopt for a 404 when \a missing_ok. Throws CloudError.
  std::optional<nlohmann::json> call(const std::string& method, const std::string& path,
                                     const std::string& query, const nlohmann::json* body,
                                     bool missing_ok);
  /// Every item under \a key of a paginated list.
  std::vector<nlohmann::json> list(const std::string& path, const std::string& query,
                                   const std::string& key);

  std::string m_token;
  std::string m_base;
  std::unique_ptr<http::Transport> m_transport;
  bool m_curl = false;  ///< m_transport is libcurl's (not a test's fake)
  http::RetryPolicy m_retry;
};

}  // namespace gm::drivers::digitalocean
