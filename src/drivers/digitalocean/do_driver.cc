// The digitalocean driver: flags and offline validation, the create pipeline (size and price ->
// record -> SSH key -> tag -> firewall -> droplet with region failover -> active -> SSH), power
// actions polled to completion, and rm with each deletion verified.
#include "drivers/digitalocean/do_driver.h"

#include "drivers/caller_address.h"
#include "drivers/cloud_init.h"
#include "drivers/digitalocean/do_api.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "ssh/keys.h"
#include "util/fs.h"
#include "util/interrupt.h"
#include "util/log.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

namespace gm::drivers::digitalocean {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::chrono::minutes k_active_deadline{15};
constexpr std::chrono::minutes k_ssh_deadline{5};
constexpr std::chrono::minutes k_action_deadline{5};
constexpr std::chrono::minutes k_gone_deadline{2};
constexpr milliseconds k_poll{500};
constexpr milliseconds k_consistency_wait{1500};
constexpr int k_create_attempts = 3;
constexpr const char* k_default_size = "gpu-4000adax1-20gb";
constexpr double k_mib_per_gib = 1024;

/// The driver's own settings and progress, kept in record.driver_config.
/// The size and the region asked for are the core's (record.size.instance_type, .region; an
/// empty region: the size's regions in the API's order), and so is create's progress.
struct Config {
  std::string image;
  std::string ssh_cidr;
  std::vector<std::string> user_tags;
  std::string user_data;  ///< path of the user's own user data; empty: none
  std::string home_id;
  double price_hourly = -1;  ///< from /v2/sizes at create; < 0: unknown
  std::int64_t create_action = 0;
};

Config config_of(const MachineRecord& record) {
  const nlohmann::json& j = record.driver_config;
  Config c;
  c.image = j.value("image", "");
  c.ssh_cidr = j.value("ssh_cidr", "");
  c.user_tags = j.value("user_tags", std::vector<std::string>{});
  c.user_data = j.value("user_data", "");
  c.home_id = j.value("home_id", "");
  c.price_hourly = j.value("price_hourly", -1.0);
  c.create_action = j.value("create_action", std::int64_t{0});
  return c;
}

void store_config(MachineRecord& record, const Config& c) {
  nlohmann::json& j = record.driver_config;
  j["image"] = c.image;
  j["ssh_cidr"] = c.ssh_cidr;
  j["user_tags"] = c.user_tags;
  j["user_data"] = c.user_data;
  j["home_id"] = c.home_id;
  j["price_hourly"] = c.price_hourly;
  j["create_action"] = c.create_action;
}

std::string subject_of(const MachineRecord& record) {
  return "machine '" + record.name + "'";
}

/// Letters, digits and '-' only: valid in droplet and firewall names and in tags.
std::string sanitize(std::string_view text) {
  std::string out;
  for (char c : text) {
    out += std::isalnum(static_cast<unsigned char>(c)) != 0 ? c : '-';
  }
  return out;
}

std::string resource_name(const MachineRecord& record) {
  return "gpumachine-" + sanitize(record.name) + "-" + record.id.substr(0, 8);
}

std::string id_tag(const MachineRecord& record) {
  return k_tag_id + record.id;
}

Resource* ledger(MachineRecord& record, std::string_view kind) {
  for (Resource& r : record.resources) {
    if (r.kind == kind && r.status != "deleted") {
      return &r;
    }
  }
  return nullptr;
}

void set_ledger(MachineRecord& record, DriverHost& host, const std::string& kind,
                const std::string& id, const std::string& status, const std::string& region = {}) {
  if (Resource* r = ledger(record, kind)) {
    r->id = id;
    r->status = status;
    r->region = region.empty() ? r->region : region;
  } else {
    record.resources.push_back({.kind = kind, .id = id, .region = region, .status = status});
  }
  host.save(record);
}

std::int64_t droplet_id(MachineRecord& record) {
  Resource* r = ledger(record, "droplet");
  return r != nullptr && !r->id.empty() ? std::stoll(r->id) : 0;
}

void pause(DriverHost& host) {
  util::sleep_unless_interrupted(k_poll);
  host.check_interrupted();
}

std::string price_text(double usd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, usd < 1 ? "$%.5g/h" : "$%.2f/h", usd);
  return buf;
}

Size find_size(DoApi& api, const std::string& slug) {
  std::vector<Size> sizes = api.sizes();
  auto it = std::find_if(sizes.begin(), sizes.end(), [&](const Size& s) { return s.slug == slug; });
  if (it != sizes.end()) {
    return *it;
  }
  std::string gpus;
  for (const Size& s : sizes) {
    if (s.gpu_count > 0) {
      gpus += (gpus.empty() ? "" : ", ") + s.slug;
    }
  }
  throw UsageError("--do-size " + slug, "is not a DigitalOcean size this account can create",
                   "GPU sizes: " + gpus + "; `doctl compute size list` shows all");
}

/// Regions to try, in order: the one asked for, else every region the size is offered in.
std::vector<std::string> regions_for(const Size& size, const std::string& asked) {
  if (asked.empty()) {
    if (size.regions.empty() || !size.available) {
      throw Error("size " + size.slug, "is sold out in every region (its regions list is empty)",
                  {}, "try another --do-size, or later");
    }
    return size.regions;
  }
  if (std::find(size.regions.begin(), size.regions.end(), asked) == size.regions.end()) {
    std::string offered;
    for (const std::string& r : size.regions) {
      offered += (offered.empty() ? "" : ", ") + r;
    }
    throw UsageError("--do-region " + asked, "size " + size.slug + " is not offered there",
                     offered.empty() ? "it is sold out everywhere; try another --do-size"
                                     : "it is offered in: " + offered);
  }
  return {asked};
}

/// A 422 that means "not here, try another region" (facts 10).
bool is_capacity(const CloudError& e) {
  if (e.http_status() != 422) {
    return false;
  }
  std::string m = e.message();
  std::transform(m.begin(), m.end(), m.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return m.find("size") != std::string::npos || m.find("region") != std::string::npos ||
         m.find("capacity") != std::string::npos || m.find("available") != std::string::npos;
}

/// 22/tcp from \a cidr only.
nlohmann::json inbound_rules(const std::string& cidr) {
  return nlohmann::json::array(
      {{{"protocol", "tcp"}, {"ports", "22"}, {"sources", {{"addresses", {cidr}}}}}});
}

/// Everything out: a firewall without outbound rules blocks apt, DNS and NTP (facts 6).
nlohmann::json outbound_rules() {
  nlohmann::json anywhere = {{"addresses", {"0.0.0.0/0", "::/0"}}};
  return nlohmann::json::array(
      {{{"protocol", "tcp"}, {"ports", "0"}, {"destinations", anywhere}},
       {{"protocol", "udp"}, {"ports", "0"}, {"destinations", anywhere}},
       {{"protocol", "icmp"}, {"ports", "0"}, {"destinations", anywhere}}});
}

/// Polls an action to completion; an errored action is an Error.
void wait_action(DoApi& api, const MachineRecord& record, std::int64_t action_id,
                 DriverHost& host) {
  auto deadline = Clock::now() + k_action_deadline;
  while (true) {
    Action a = api.action(action_id);
    if (a.status == "completed") {
      return;
    }
    if (a.status == "errored") {
      throw Error(subject_of(record),
                  "the " + a.type + " action " + std::to_string(a.id) + " failed at DigitalOcean");
    }
    if (Clock::now() > deadline) {
      throw Error(subject_of(record), "the " + a.type + " action " + std::to_string(a.id) +
                                          " is still in progress after 5 minutes");
    }
    pause(host);
  }
}

/// Polls the droplet until its status is \a status (the status trails a completed action), and,
/// for active, until it has a public address.
Droplet wait_status(DoApi& api, MachineRecord& record, const std::string& status,
                    DriverHost& host) {
  std::int64_t id = droplet_id(record);
  auto deadline = Clock::now() + k_active_deadline;
  while (true) {
    std::optional<Droplet> d = api.droplet(id);
    if (d && d->status == status && (status != "active" || !d->public_ip.empty())) {
      return *d;
    }
    if (Clock::now() > deadline) {
      throw Error(subject_of(record),
                  "droplet " + std::to_string(id) + " is not " + status + " after 15 minutes",
                  d ? "its status is " + d->status : "it is gone",
                  "`gpumachine rm " + record.name + "` destroys it (it is billed while it exists)");
    }
    pause(host);
  }
}

void wait_for_ssh(const MachineRecord& record, DriverHost& host) {
  if (host.wait_target() == "ssh") {
    host.phase("waiting for SSH on " + record.ssh.host);
    machine::connect(record, k_ssh_deadline);
  }
}

/// Waits until \a exists says the resource answers 404.
template <typename Exists>
void wait_gone(const std::string& what, Exists exists, DriverHost& host) {
  auto deadline = Clock::now() + k_gone_deadline;
  while (exists()) {
    if (Clock::now() > deadline) {
      throw Error(what, "is still there 2 minutes after it was deleted", {},
                  "run `gpumachine rm` again");
    }
    pause(host);
  }
}

class DoDriver : public Driver {
 public:
  std::string_view name() const override { return "digitalocean"; }
  Capabilities capabilities() const override {
    // A powered-off droplet is billed in full, and the host's own power-off cannot be made a
    // destroy (facts 2.6, 10).
    return {.power = true,
            .reboot = true,
            .stop_saves_compute = false,
            .firewall = FirewallModel::per_machine_source_cidr};
  }

  void configure(const Options& options, MachineRecord& record) override;
  void create(MachineRecord& record, DriverHost& host) override;
  MachineState state(MachineRecord& record, DriverHost& host) override;
  void start(MachineRecord& record, DriverHost& host) override;
  void stop(MachineRecord& record, DriverHost& host) override;
  void kill(MachineRecord& record, DriverHost& host) override;
  void restart(MachineRecord& record, DriverHost& host) override;
  std::vector<std::string> remove(MachineRecord& record, DriverHost& host) override;
  std::optional<PriceQuote> quote(const MachineRecord& record,
                                  const std::filesystem::path& home) override;
  std::pair<std::string, std::string> allow_ssh_from(MachineRecord& record, DriverHost& host,
                                                     const std::string& cidr) override;

 private:
  void ensure_local_keys(MachineRecord& record, DriverHost& host);
  void ensure_ssh_key(DoApi& api, MachineRecord& record, DriverHost& host);
  void ensure_firewall(DoApi& api, MachineRecord& record, DriverHost& host);
  void launch(DoApi& api, MachineRecord& record, const Size& size, DriverHost& host);
  std::string user_data(const MachineRecord& record) const;

  BootScript m_boot;
  void power(MachineRecord& record, DriverHost& host, const std::string& type,
             const std::string& until);
};

std::string single(const Options& options, const std::string& name) {
  auto it = options.find(name);
  return it == options.end() || it->second.empty() ? std::string() : it->second.back();
}

void DoDriver::configure(const Options& options, MachineRecord& record) {
  Config c;
  record.size.instance_type = single(options, "do-size");
  if (record.size.instance_type.empty()) {
    record.size.instance_type = k_default_size;
  }
  record.size.region = single(options, "do-region");
  c.image = single(options, "do-image");
  if (c.image.empty()) {
    c.image = default_image(record.size.instance_type);
  }
  c.ssh_cidr = single(options, "do-ssh-cidr");
  if (!c.ssh_cidr.empty() && c.ssh_cidr.find('/') == std::string::npos) {
    c.ssh_cidr += "/32";
  }
  if (auto it = options.find("do-tag"); it != options.end()) {
    for (const std::string& tag : it->second) {
      if (tag.empty() || tag.size() > 255 ||
          tag.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789_-:") != std::string::npos) {
        throw UsageError("--do-tag " + tag, "is not a DigitalOcean tag name",
                         "use letters, digits, '_', '-' and ':' (e.g. team:ml)");
      }
      c.user_tags.push_back(tag);
    }
  }
  if (std::string path = single(options, "do-user-data"); !path.empty()) {
    if (!std::filesystem::exists(path)) {
      throw UsageError("--do-user-data " + path, "no such file");
    }
    c.user_data = std::filesystem::absolute(path).string();
  }
  record.ssh.port = 22;
  record.ssh.user = "root";  // DigitalOcean's images log in as root
  store_config(record, c);
}

void DoDriver::ensure_local_keys(MachineRecord& record, DriverHost& host) {
  ssh::ensure_key_pair(record.ssh.key_path, "gpumachine-" + record.name);
  // Plain Ubuntu gets the provisioning prelude; the AI/ML-ready images come with the driver.
  const std::string image = config_of(record).image;
  BootImage boot;
  for (const char* version : {"24.04", "22.04"}) {
    std::string slug = "ubuntu-" + std::string(version) + "-x64";
    std::replace(slug.begin(), slug.end(), '.', '-');
    if (image == slug) {
      boot.os_id = "ubuntu";
      boot.os_version = version;
    }
  }
  boot.nvswitch = record.size.instance_type.find("x8-") != std::string::npos;
  m_boot = host.boot_script(record, boot);
}

std::string DoDriver::user_data(const MachineRecord& record) const {
  Config c = config_of(record);
  UserDataParts parts;
  parts.host_private_key = m_boot.host_private_key;
  parts.host_public_key = m_boot.host_public_key;
  parts.provision_prelude = m_boot.script;
  if (!c.user_data.empty()) {
    parts.user_data = util::read_file(c.user_data);
  }
  parts.boundary = "gpumachine-" + record.id;
  std::string rendered = render_user_data(parts);
  if (rendered.size() > 64 * 1024) {
    throw UsageError("--do-user-data " + c.user_data,
                     "the user data is larger than DigitalOcean's 64 KiB with the host key",
                     "shorten the file");
  }
  return rendered;
}

/// The machine's own login key, registered once: looked up by its MD5 fingerprint first (no
/// list call: that one is limited to 10 a minute), so a resumed create adopts it.
void DoDriver::ensure_ssh_key(DoApi& api, MachineRecord& record, DriverHost& host) {
  Resource* r = ledger(record, "ssh-key");
  if (r != nullptr && r->status == "created") {
    return;
  }
  std::string pub = util::read_file(record.ssh.key_path + ".pub");
  std::string fingerprint = key_fingerprint(pub);
  set_ledger(record, host, "ssh-key", fingerprint, "creating");
  std::optional<SshKey> key = api.key(fingerprint);
  if (!key) {
    host.phase("registering SSH key " + resource_name(record));
    key = api.create_key(resource_name(record), pub);
  }
  set_ledger(record, host, "ssh-key", std::to_string(key->id), "created");
}

/// A firewall on the machine's id tag, made before the droplet: 22/tcp from one /32 in, all
/// out (a firewall without outbound rules blocks apt, DNS and NTP; facts 6).
void DoDriver::ensure_firewall(DoApi& api, MachineRecord& record, DriverHost& host) {
  Resource* r = ledger(record, "firewall");
  if (r != nullptr && r->status == "created") {
    return;
  }
  Config c = config_of(record);
  if (c.ssh_cidr.empty()) {
    c.ssh_cidr = caller_cidr("--do-ssh-cidr");
    store_config(record, c);
  }
  const std::string tag = id_tag(record);
  if (ledger(record, "tag") == nullptr) {
    set_ledger(record, host, "tag", tag, "creating");
  }
  api.create_tag(tag);
  set_ledger(record, host, "tag", tag, "created");
  set_ledger(record, host, "firewall", "", "creating");
  for (const Firewall& f : api.firewalls()) {  // a create killed before the answer was saved
    if (f.name == resource_name(record)) {
      set_ledger(record, host, "firewall", f.id, "created");
      return;
    }
  }
  host.phase("creating firewall " + resource_name(record) + " (22/tcp from " + c.ssh_cidr + ")");
  Firewall f = api.create_firewall(resource_name(record), {tag}, inbound_rules(c.ssh_cidr),
                                   outbound_rules());
  set_ledger(record, host, "firewall", f.id, "created");
}

void DoDriver::launch(DoApi& api, MachineRecord& record, const Size& size, DriverHost& host) {
  Resource* r = ledger(record, "droplet");
  if (r != nullptr && !r->id.empty()) {
    return;
  }
  Config c = config_of(record);
  const std::string tag = id_tag(record);
  // A create whose answer was lost (killed, or a 5xx after the droplet was made): the API has
  // no idempotency, so look for the droplet by its id tag before asking again (facts 1.7).
  auto adopt_existing = [&]() {
    std::vector<Droplet> found = api.droplets_tagged(tag);
    if (found.empty()) {
      return false;
    }
    set_ledger(record, host, "droplet", std::to_string(found.front().id), "created",
               found.front().region);
    return true;
  };
  if (r != nullptr && adopt_existing()) {
    return;
  }
  // Right after a create a droplet may not be listed yet (facts 2.6): wait before looking.
  auto adopt_after_lost_answer = [&]() {
    util::sleep_unless_interrupted(k_consistency_wait);
    host.check_interrupted();
    return adopt_existing();
  };
  DropletCreate request{.name = resource_name(record),
                        .size = size.slug,
                        .image = c.image,
                        .ssh_keys = {std::stoll(ledger(record, "ssh-key")->id)},
                        .tags = {k_tag_all, tag, k_tag_machine + sanitize(record.name)},
                        .user_data = user_data(record)};
  if (!c.home_id.empty()) {
    request.tags.push_back(k_tag_home + c.home_id);
  }
  request.tags.insert(request.tags.end(), c.user_tags.begin(), c.user_tags.end());
  std::vector<std::string> regions = regions_for(size, record.size.region);
  std::string tried;
  for (const std::string& region : regions) {
    request.region = region;
    set_ledger(record, host, "droplet", "", "creating", region);
    for (int attempt = 1;; ++attempt) {
      host.phase("creating droplet " + request.name + " (" + size.slug + " in " + region + ")");
      try {
        auto [droplet, action] = api.create_droplet(request);
        c.create_action = action;
        store_config(record, c);
        set_ledger(record, host, "droplet", std::to_string(droplet.id), "created", region);
        record.size.region = region;
        host.save(record);
        return;
      } catch (const CloudError& e) {
        if (e.http_status() < 500) {
          if (!is_capacity(e)) {
            throw;
          }
          tried += (tried.empty() ? "" : "; ") + region + ": " + e.message();
          break;
        }
        // A 5xx may come after the droplet was made: look before asking again (facts 1.7).
        if (adopt_after_lost_answer()) {
          return;
        }
        if (attempt >= k_create_attempts) {
          throw;
        }
      } catch (const http::TransportError& e) {
        if (adopt_after_lost_answer()) {
          return;
        }
        if (attempt >= k_create_attempts) {
          throw Error(subject_of(record), "the droplet create got no answer", e.what(),
                      "`gpumachine create " + record.name + "` looks for it again and resumes");
        }
      }
    }
  }
  throw Error(subject_of(record), "no region has capacity for " + size.slug, tried,
              "try another --do-size or --do-region, or later");
}

void DoDriver::create(MachineRecord& record, DriverHost& host) {
  Config c = config_of(record);
  if (c.home_id.empty()) {
    c.home_id = host.home_id();
  }
  DoApi api = DoApi::from_env();
  Size size = find_size(api, record.size.instance_type);
  c.price_hourly = size.price_hourly;
  regions_for(size, record.size.region);  // refuse an impossible region before anything is made
  record.size.vcpus = size.vcpus;
  record.size.memory_mib = size.memory_mib;
  record.size.gpu_count = size.gpu_count;
  record.size.gpu_model = size.gpu_model;
  record.size.gpu_memory_mib =
      size.gpu_count > 0
          ? static_cast<long>(static_cast<double>(size.gpu_vram_gib) * k_mib_per_gib) /
                size.gpu_count
          : 0;
  host.phase(size.slug + " (" + size.description + "): " + price_text(size.price_hourly) +
             " from DigitalOcean's /v2/sizes, billed while the droplet exists, powered off too");
  record.progress.incomplete = true;
  store_config(record, c);
  host.save(record);
  ensure_local_keys(record, host);
  host.save(record);
  ensure_ssh_key(api, record, host);
  host.check_interrupted();
  ensure_firewall(api, record, host);
  host.check_interrupted();
  try {
    launch(api, record, size, host);
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error&) {
    if (droplet_id(record) == 0) {
      remove(record, host);  // nothing bills; leave nothing behind
      record.progress.rolled_back = true;
      host.save(record);
    }
    throw;
  }
  c = config_of(record);
  host.phase("waiting for droplet " + std::to_string(droplet_id(record)) + " to be active");
  if (c.create_action != 0) {
    wait_action(api, record, c.create_action, host);
  }
  Droplet d = wait_status(api, record, "active", host);
  record.ssh.host = d.public_ip;
  host.save(record);
  wait_for_ssh(record, host);
  record.progress.incomplete = false;
  record.last_state = "running";
  host.save(record);
}

MachineState DoDriver::state(MachineRecord& record, DriverHost&) {
  std::int64_t id = droplet_id(record);
  if (id == 0) {
    return record.progress.incomplete ? MachineState::pending : MachineState::unknown;
  }
  std::optional<Droplet> d = DoApi::from_env().droplet(id);
  if (!d) {
    return MachineState::terminated;
  }
  if (!d->public_ip.empty()) {
    record.ssh.host = d->public_ip;
  }
  return map_status(d->status);
}

void DoDriver::power(MachineRecord& record, DriverHost& host, const std::string& type,
                     const std::string& until) {
  std::int64_t id = droplet_id(record);
  if (id == 0) {
    throw Error(subject_of(record), "has no droplet yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  DoApi api = DoApi::from_env();
  std::optional<Droplet> d = api.droplet(id);
  if (!d) {
    throw Error(subject_of(record), "droplet " + std::to_string(id) + " is gone", {},
                "`gpumachine rm " + record.name + "` removes the record");
  }
  if (d->status != until || type == "reboot") {
    host.phase(type + " droplet " + std::to_string(id));
    Action a = api.droplet_action(id, type);
    wait_action(api, record, a.id, host);
  }
  Droplet now = wait_status(api, record, until, host);
  if (!now.public_ip.empty()) {
    record.ssh.host = now.public_ip;
  }
  record.last_state = std::string(to_string(map_status(until)));
  host.save(record);
}

void DoDriver::start(MachineRecord& record, DriverHost& host) {
  power(record, host, "power_on", "active");
  wait_for_ssh(record, host);
}

// The core warns that the droplet stays billed (capability stop_saves_compute is false).
void DoDriver::stop(MachineRecord& record, DriverHost& host) {
  power(record, host, "shutdown", "off");
}

void DoDriver::kill(MachineRecord& record, DriverHost& host) {
  power(record, host, "power_off", "off");
}

void DoDriver::restart(MachineRecord& record, DriverHost& host) {
  // The reboot action can complete, and the droplet read active, before the guest has gone
  // down: only an answer from a new boot ends the wait.
  std::string old_boot;
  if (host.wait_target() == "ssh") {
    old_boot = machine::boot_before_reboot(record);
  }
  power(record, host, "reboot", "active");
  if (host.wait_target() == "ssh") {
    host.phase("waiting for " + record.name + " to come back from the reboot");
    machine::wait_for_new_boot(record, host, old_boot, k_ssh_deadline);
  }
}

/// Replaces the firewall's one inbound rule (PUT replaces the whole firewall, so every field
/// is sent again).
std::pair<std::string, std::string> DoDriver::allow_ssh_from(MachineRecord& record,
                                                             DriverHost& host,
                                                             const std::string& cidr) {
  Resource* r = ledger(record, "firewall");
  if (r == nullptr || r->id.empty()) {
    throw Error(subject_of(record), "has no firewall yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  Config c = config_of(record);
  std::string now = cidr.empty() ? caller_cidr("--do-ssh-cidr")
                                 : (cidr.find('/') == std::string::npos ? cidr + "/32" : cidr);
  std::string old = c.ssh_cidr;
  host.phase("firewall " + resource_name(record) + ": 22/tcp from " + now);
  DoApi::from_env().replace_firewall(r->id, resource_name(record), {id_tag(record)},
                                     inbound_rules(now), outbound_rules());
  c.ssh_cidr = now;
  store_config(record, c);
  host.save(record);
  return {old, now};
}

/// Prices move (facts 3.1), so the quote before create is asked of /v2/sizes, not a table; a
/// created machine's is the price recorded then (`ls` makes no call per machine).
std::optional<PriceQuote> DoDriver::quote(const MachineRecord& record,
                                          const std::filesystem::path&) {
  if (double recorded = config_of(record).price_hourly; recorded >= 0) {
    return PriceQuote{.size = record.size.instance_type,
                      .region = record.size.region,
                      .usd_per_hour = recorded,
                      .basis = "on-demand",
                      .origin = "record",
                      .as_of = record.created_at};
  }
  DoApi api = DoApi::from_env();
  Size size = find_size(api, record.size.instance_type);
  return PriceQuote{.size = size.slug,
                    .region = record.size.region,
                    .usd_per_hour = size.price_hourly,
                    .basis = "on-demand",
                    .origin = "DigitalOcean /v2/sizes"};
}

std::vector<std::string> DoDriver::remove(MachineRecord& record, DriverHost& host) {
  std::vector<std::string> done;
  DoApi api = DoApi::from_env();
  // 1. The droplet: the ledger's, else one a killed create made (found by the id tag).
  std::vector<std::int64_t> droplets;
  if (std::int64_t id = droplet_id(record); id != 0) {
    droplets.push_back(id);
  } else if (ledger(record, "droplet") != nullptr) {
    for (const Droplet& d : api.droplets_tagged(id_tag(record))) {
      droplets.push_back(d.id);
    }
  }
  for (std::int64_t id : droplets) {
    host.phase("destroying droplet " + std::to_string(id));
    api.delete_droplet(id);
    // Delete is asynchronous: the droplet stays visible a little while (facts 2.4).
    wait_gone(
        "droplet " + std::to_string(id), [&] { return api.droplet(id).has_value(); }, host);
    done.push_back("destroyed droplet " + std::to_string(id));
  }
  if (Resource* r = ledger(record, "droplet")) {
    r->status = "deleted";
    host.save(record);
  }
  // 2. The firewall (by ledger id, else by name).
  if (Resource* r = ledger(record, "firewall")) {
    std::string id = r->id;
    if (id.empty()) {
      for (const Firewall& f : api.firewalls()) {
        id = f.name == resource_name(record) ? f.id : id;
      }
    }
    if (!id.empty()) {
      api.delete_firewall(id);
      wait_gone(
          "firewall " + id, [&] { return api.firewall(id).has_value(); }, host);
      done.push_back("deleted firewall " + resource_name(record));
    }
    ledger(record, "firewall")->status = "deleted";
    host.save(record);
  }
  // 3. The SSH key (id, or its fingerprint while creating), 4. the machine's id tag.
  if (Resource* r = ledger(record, "ssh-key")) {
    std::string id = r->id;
    api.delete_key(id);
    wait_gone(
        "SSH key " + id, [&] { return api.key(id).has_value(); }, host);
    done.push_back("deleted SSH key " + resource_name(record));
    ledger(record, "ssh-key")->status = "deleted";
    host.save(record);
  }
  if (Resource* r = ledger(record, "tag")) {
    api.delete_tag(r->id);
    done.push_back("deleted tag " + r->id);
    r->status = "deleted";
    host.save(record);
  }
  return done;
}

/// One paginated call per home tag (plus the GPU list, see droplets_tagged) for all machines.
void list_states(std::vector<MachineRecord*>& records, std::chrono::milliseconds) {
  std::map<std::string, std::vector<MachineRecord*>> by_tag;
  for (MachineRecord* r : records) {
    std::string home = r->driver_config.value("home_id", "");
    by_tag[home.empty() ? std::string(k_tag_all) : k_tag_home + home].push_back(r);
  }
  std::optional<DoApi> api;
  for (auto& [tag, group] : by_tag) {
    std::map<std::int64_t, Droplet> found;
    try {
      if (!api) {
        api.emplace(access_token(), api_base_url());
      }
      for (Droplet& d : api->droplets_tagged(tag)) {
        found[d.id] = std::move(d);
      }
    } catch (const std::exception& e) {
      util::debug(std::string("digitalocean: ls: ") + e.what());
      continue;  // last_state stays as it was
    }
    for (MachineRecord* r : group) {
      std::int64_t id = droplet_id(*r);
      auto it = found.find(id);
      if (id == 0) {
        continue;
      }
      if (it == found.end()) {
        r->last_state = "terminated";
        continue;
      }
      r->last_state = std::string(to_string(map_status(it->second.status)));
      if (!it->second.public_ip.empty()) {
        r->ssh.host = it->second.public_ip;
      }
    }
  }
}

}  // namespace

MachineState map_status(std::string_view status) {
  if (status == "new") {
    return MachineState::pending;
  }
  if (status == "active") {
    return MachineState::running;
  }
  if (status == "off") {
    return MachineState::stopped;
  }
  if (status == "archive") {
    return MachineState::terminated;
  }
  return MachineState::unknown;
}

std::string default_image(std::string_view size_slug) {
  if (!size_slug.starts_with("gpu-")) {
    return "ubuntu-24-04-x64";
  }
  if (size_slug.starts_with("gpu-mi")) {
    return "gpu-amd-base";
  }
  return size_slug.find("x8-") != std::string_view::npos ? "gpu-h100x8-base" : "gpu-h100x1-base";
}

std::unique_ptr<Driver> make_driver() {
  return std::make_unique<DoDriver>();
}

DriverInfo driver_info() {
  DriverInfo info;
  info.name = "digitalocean";
  info.aliases = {"do"};
  info.description = "a droplet in your DigitalOcean account (token: DIGITALOCEAN_ACCESS_TOKEN)";
  info.flags = {
      {.name = "do-size",
       .help = "droplet size slug (GPU: gpu-4000adax1-20gb, gpu-l40sx1-48gb, gpu-h100x1-80gb, ...)",
       .default_value = k_default_size,
       .aliases = {"digitalocean-size"}},
      {.name = "do-region",
       .help = "region slug (default: the size's regions in turn until one has capacity)",
       .aliases = {"digitalocean-region"}},
      {.name = "do-image",
       .help = "image slug or id (default: the AI/ML-ready image for GPU sizes, else "
               "ubuntu-24-04-x64)",
       .aliases = {"digitalocean-image"}},
      {.name = "do-ssh-cidr",
       .help = "source range the firewall admits to 22/tcp (default: this computer's address/32)"},
      {.name = "do-tag",
       .help = "extra droplet tag (letters, digits, _ - :)",
       .repeatable = true,
       .aliases = {"digitalocean-tags"}},
      {.name = "do-user-data",
       .help = "file with your own user data (script or cloud-config), added to gpumachine's"},
  };
  info.make = make_driver;
  info.list_states = list_states;
  info.find_orphans = find_orphans;
  info.delete_orphans = delete_orphans;
  return info;
}

}  // namespace gm::drivers::digitalocean
