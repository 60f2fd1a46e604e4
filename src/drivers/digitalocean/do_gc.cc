// `gc` for DigitalOcean: droplets tagged gpumachine that no local record owns (scoped to this
// home by the gpumachine:home: tag), and the firewalls, SSH keys and id tags of machines that have
// no local record, matched by the names and tags create gives them.
#include "drivers/digitalocean/do_api.h"
#include "drivers/digitalocean/do_driver.h"
#include "drivers/orphans.h"
#include "gm/error.h"
#include "util/interrupt.h"
#include "util/time.h"

#include <algorithm>
#include <functional>
#include <map>

namespace gm::drivers::digitalocean {

namespace {

/// The value of the first tag starting with \a prefix, or "".
std::string tag_value(const std::vector<std::string>& tags, const std::string& prefix) {
  for (const std::string& t : tags) {
    if (t.starts_with(prefix)) {
      return t.substr(prefix.size());
    }
  }
  return {};
}

/// The machine id whose first 8 characters end a gpumachine-NAME-ID8 name, among \a ids.
std::string id_of_name(const std::string& name, const std::map<std::string, Orphan>& by_id) {
  for (const auto& [id, o] : by_id) {
    if (name.size() > 8 && name.ends_with("-" + id.substr(0, 8))) {
      return id;
    }
  }
  return {};
}

}  // namespace

std::vector<Orphan> find_orphans(const OrphanScope& scope) {
  if (!find_token()) {
    return {};  // this computer does not use DigitalOcean
  }
  DoApi api = DoApi::from_env();
  std::vector<Orphan> out;
  std::map<std::string, Orphan> droplet_of;  // machine id -> its droplet's row
  for (const Droplet& d : api.droplets_tagged(k_tag_all)) {
    std::string id = tag_value(d.tags, k_tag_id);
    if (scope.known_ids.contains(id)) {
      continue;
    }
    Orphan o{.kind = "droplet",
             .id = std::to_string(d.id),
             .region = d.region,
             .state = d.status,
             .detail = d.name + " " + d.size_slug,
             .machine = tag_value(d.tags, k_tag_machine),
             .home = tag_value(d.tags, k_tag_home),
             .created = d.created_at};
    o.kept = kept_reason(o, scope, util::parse_rfc3339(d.created_at));
    droplet_of[id] = o;
    out.push_back(std::move(o));
  }
  // Firewalls, keys and tags carry no home: they follow their droplet's verdict, and without a
  // droplet (a create killed before it) they are kept unless --all-homes.
  auto follow = [&](Orphan o, const std::string& id) {
    auto it = droplet_of.find(id);
    if (it != droplet_of.end()) {
      o.home = it->second.home;
      o.machine = it->second.machine;
      o.created = it->second.created;
      o.kept = it->second.kept;
    } else {
      o.kept = kept_reason(o, scope, std::nullopt);
      if (scope.all_homes && o.kept.starts_with("its age is unknown")) {
        o.kept.clear();  // --all-homes: the user takes every gpumachine leftover
      }
    }
    out.push_back(std::move(o));
  };
  for (const Firewall& f : api.firewalls()) {
    std::string id = tag_value(f.tags, k_tag_id);
    if (!f.name.starts_with("gpumachine-") || id.empty() || scope.known_ids.contains(id)) {
      continue;
    }
    follow({.kind = "firewall", .id = f.id, .detail = f.name}, id);
  }
  for (const SshKey& k : api.keys()) {
    if (!k.name.starts_with("gpumachine-")) {
      continue;
    }
    bool known = std::any_of(scope.known_ids.begin(), scope.known_ids.end(), [&](const auto& id) {
      return k.name.ends_with("-" + id.substr(0, 8));
    });
    if (!known) {
      follow({.kind = "ssh-key", .id = std::to_string(k.id), .detail = k.name},
             id_of_name(k.name, droplet_of));
    }
  }
  return out;
}

std::vector<std::string> delete_orphans(const std::vector<Orphan>& found) {
  std::vector<std::string> lines;
  DoApi api = DoApi::from_env();
  GcHost host;
  auto attempt = [&](const Orphan& o, const std::function<bool()>& gone) {
    try {
      host.check_interrupted();
      lines.push_back((gone() ? "deleted " : "already gone: ") + o.kind + " " + o.id + " (" +
                      o.detail + ")");
    } catch (const InterruptedError&) {
      throw;
    } catch (const std::exception& e) {
      lines.push_back("FAILED deleting " + o.kind + " " + o.id + ": " + e.what());
    }
  };
  // Droplets first (a firewall or key may still be in use by one), each waited for.
  for (const std::string kind : {"droplet", "firewall", "ssh-key"}) {
    for (const Orphan& o : found) {
      if (!o.kept.empty() || o.kind != kind) {
        continue;
      }
      attempt(o, [&] {
        if (kind == "droplet") {
          std::int64_t id = std::stoll(o.id);
          bool was = api.delete_droplet(id);
          while (api.droplet(id)) {  // asynchronous delete (facts 2.4)
            util::sleep_unless_interrupted(std::chrono::milliseconds(500));
            host.check_interrupted();
          }
          return was;
        }
        return kind == "firewall" ? api.delete_firewall(o.id) : api.delete_key(o.id);
      });
    }
  }
  return lines;
}

}  // namespace gm::drivers::digitalocean
