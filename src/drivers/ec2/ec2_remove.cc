// rm: everything in the ledger (and what a killed create left untracked) removed, verified; and
// gc: the tag-based orphan scan and the deletion of what it found, with the same primitives.
#include "drivers/ec2/ec2_internal.h"
#include "drivers/orphans.h"

#include "aws/xml.h"
#include "gm/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/time.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <set>

namespace gm::drivers::ec2 {

void terminate_and_wait(Ec2Api& api, const MachineRecord& record,
                        const std::vector<std::string>& ids, DriverHost& host,
                        const std::function<void(const std::string& id)>& gone) {
  for (const std::string& id : ids) {
    host.phase("terminating " + id);
    aws::QueryParams p;
    p.set("InstanceId.1", id);
    try {
      api.call("TerminateInstances", p);
    } catch (const CloudError& e) {
      if (!is_not_found(e.code())) {
        throw;
      }
    }
  }
  for (const std::string& id : ids) {
    host.phase("waiting for " + id + " to terminate");
    wait_for_state(api, record, id, {"terminated"}, {}, true, host);
    gone(id);
  }
}

bool delete_security_group(Ec2Api& api, const std::string& group_id, DriverHost& host,
                           const std::function<bool()>& may_be_invisible,
                           const std::function<void()>& between) {
  host.phase("deleting security group " + group_id);
  milliseconds delay{1000};
  auto deadline = Clock::now() + k_sg_delete_deadline;
  while (true) {
    aws::QueryParams p;
    p.set("GroupId", group_id);
    try {
      api.call("DeleteSecurityGroup", p);
      return true;
    } catch (const CloudError& e) {
      // Not found right after CreateSecurityGroup is EC2 not showing it yet, not "gone".
      if (is_not_found(e.code()) && !may_be_invisible()) {
        return false;
      }
      bool retry = e.code() == "DependencyViolation" || is_not_found(e.code());
      if (!retry || Clock::now() > deadline) {
        throw;
      }
      host.debug("ec2: " + group_id + " still in use; retrying in " +
                 std::to_string(delay.count()) + " ms");
    }
    pause(host, delay);
    delay = std::min(delay * 2, milliseconds(10000));
    between();
  }
}

std::vector<std::string> Ec2Driver::remove(MachineRecord& record, DriverHost& host) {
  Bound bound(*this, record);
  std::vector<std::string> done;
  Ec2Config& cfg = m_cfg;
  std::string region = record.size.region;
  if (region.empty() || cfg.image_id.empty()) {
    return {"nothing was created in AWS"};
  }
  Ec2Api api(region);
  std::vector<std::string> errors;

  // 1. Instances: the ledger's, plus any found by tag or ClientToken (a create killed before it
  // wrote the id down).
  auto terminate_all = [&]() {
    await_pending_launch(api, record, host);
    std::set<std::string> ids;
    for (const Resource& r : record.resources) {
      if (r.kind == "instance" && r.status != "deleted") {
        ids.insert(r.id);
      }
    }
    for (const Instance& i : find_instances(api, record)) {
      if (!ids.contains(i.id)) {
        record.resources.push_back(
            {.kind = "instance", .id = i.id, .region = region, .status = "created"});
        save(record, host);
        ids.insert(i.id);
      }
    }
    terminate_and_wait(api, record, {ids.begin(), ids.end()}, host, [&](const std::string& id) {
      for (Resource& r : record.resources) {
        if (r.kind == "instance" && r.id == id) {
          r.status = "deleted";
        }
      }
      save(record, host);
      done.push_back("terminated instance " + id + " in " + region);
    });
  };
  try {
    terminate_all();
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error& e) {
    errors.push_back(e.what());
  }

  // 2. Our security group (never the user's). It may still be "in use" for a while after the
  // instance is gone.
  Resource* sg = ledger(record, "security-group");
  if (sg != nullptr && errors.empty()) {
    try {
      std::string group_id = sg->id;
      const std::string made_at = cfg.sg_created_at;
      auto invisible = [&] { return maybe_invisible(record, made_at); };
      while (!group_id.starts_with("sg-")) {
        // Known by name only (killed while CreateSecurityGroup's answer was in flight).
        std::string found = own_security_group(api, record, group_id);
        if (!found.empty() || !invisible()) {
          group_id = found;
          break;
        }
        host.phase("looking for security group " + group_id + " (EC2 may not show it yet)");
        pause(host, k_poll_slow);
      }
      // An instance that was not visible before may be now: terminate it between tries.
      if (!group_id.empty() &&
          delete_security_group(api, group_id, host, invisible, terminate_all)) {
        done.push_back("deleted security group " + group_id);
      }
      sg->status = "deleted";
      save(record, host);
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
  }

  // 3. A cluster's placement group, once no instance is in it.
  Resource* group = ledger(record, "placement-group");
  if (group != nullptr && errors.empty()) {
    try {
      host.phase("deleting placement group " + group->id);
      aws::QueryParams p;
      p.set("GroupName", group->id);
      while (true) {
        try {
          api.call("DeletePlacementGroup", p);
          done.push_back("deleted placement group " + group->id);
          break;
        } catch (const CloudError& e) {
          // Unknown right after CreatePlacementGroup is EC2 not showing it yet, not "gone".
          if (e.code() != "InvalidPlacementGroup.Unknown") {
            throw;
          }
          if (!maybe_invisible(record, {})) {
            break;
          }
        }
        pause(host, k_poll_slow);
      }
      group->status = "deleted";
      save(record, host);
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
  }

  // 4. Our key pair (never --ec2-keypair-name's). DeleteKeyPair of a missing name succeeds.
  Resource* key = ledger(record, "key-pair");
  if (key != nullptr) {
    try {
      host.phase("deleting key pair " + key->id);
      aws::QueryParams p;
      p.set("KeyName", key->id);
      api.call("DeleteKeyPair", p);
      done.push_back("deleted key pair " + key->id);
      key->status = "deleted";
      save(record, host);
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
  }
  if (!errors.empty()) {
    throw Error(subject_of(record), "cloud cleanup is incomplete", join(errors, "; "),
                "run `gpumachine rm " + record.name +
                    "` again; `--force` deletes the record anyway and lists what was left");
  }
  return done;
}

namespace {

std::string tag(const TaggedResource& r, const char* key) {
  auto it = r.tags.find(key);
  return it == r.tags.end() ? "" : it->second;
}

/// When the resource was made: its machine's gpumachine:created tag, else its own launch or
/// create time, else the earliest of those of its machine's other resources.
std::optional<util::SystemTime> made_at(const TaggedResource& r,
                                        const std::map<std::string, util::SystemTime>& family) {
  for (const std::string& text : {tag(r, k_tag_created), r.created}) {
    if (std::optional<util::SystemTime> t = util::parse_rfc3339(text)) {
      return t;
    }
  }
  auto it = family.find(tag(r, k_tag_id));
  return it == family.end() ? std::nullopt : std::optional(it->second);
}

}  // namespace

std::vector<Orphan> find_orphans(const OrphanScope& scope) {
  std::vector<Orphan> out;
  for (const std::string& region : scope.regions) {
    Ec2Api api(region);
    std::vector<TaggedResource> found = api.tagged_resources(k_tag_id);
    std::map<std::string, util::SystemTime> family;  // gpumachine:id -> earliest known time
    for (const TaggedResource& r : found) {
      for (const std::string& text : {tag(r, k_tag_created), r.created}) {
        if (std::optional<util::SystemTime> t = util::parse_rfc3339(text)) {
          auto it = family.emplace(tag(r, k_tag_id), *t).first;
          it->second = std::min(it->second, *t);
        }
      }
    }
    for (TaggedResource& r : found) {
      if (scope.known_ids.contains(tag(r, k_tag_id)) || r.state == "terminated") {
        continue;
      }
      Orphan o{.kind = r.kind,
               .id = r.id,
               .region = r.region,
               .state = r.state,
               .detail = r.detail,
               .machine = tag(r, k_tag_machine),
               .home = tag(r, k_tag_home),
               .created = tag(r, k_tag_created).empty() ? r.created : tag(r, k_tag_created)};
      o.kept = kept_reason(o, scope, made_at(r, family));
      out.push_back(std::move(o));
    }
  }
  return out;
}

std::vector<std::string> delete_orphans(const std::vector<Orphan>& found) {
  std::vector<Orphan> orphans;
  std::copy_if(found.begin(), found.end(), std::back_inserter(orphans),
               [](const Orphan& o) { return o.kept.empty(); });
  std::vector<std::string> lines;
  GcHost host;
  std::map<std::string, std::unique_ptr<Ec2Api>> apis;
  auto api_for = [&](const std::string& region) -> Ec2Api& {
    auto& a = apis[region];
    if (!a) {
      a = std::make_unique<Ec2Api>(region);
    }
    return *a;
  };
  // Each deletion on its own: one failure is a line, and the rest still goes.
  auto attempt = [&](const std::string& what, const std::function<void()>& act) {
    try {
      act();
    } catch (const CloudError& e) {
      if (!is_not_found(e.code())) {  // already gone counts as done
        lines.push_back("FAILED " + what + ": " + e.what());
      }
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      lines.push_back("FAILED " + what + ": " + e.what());
    }
  };
  // Instances first (their volumes and groups depend on them): terminated and waited for, the
  // same way rm does, per region.
  std::map<std::string, std::vector<std::string>> instances;
  for (const Orphan& o : orphans) {
    if (o.kind == "instance") {
      instances[o.region].push_back(o.id);
    }
  }
  for (const auto& [region, ids] : instances) {
    attempt("instance " + join(ids, ", "), [&] {
      terminate_and_wait(api_for(region), MachineRecord{.name = "gc"}, ids, host,
                         [&](const std::string& id) {
                           lines.push_back("terminated instance " + id + " in " + region);
                         });
    });
  }
  for (const Orphan& o : orphans) {
    aws::QueryParams p;
    if (o.kind == "volume" && o.state == "available") {
      p.set("VolumeId", o.id);
      attempt("volume " + o.id, [&] {
        api_for(o.region).call("DeleteVolume", p);
        lines.push_back("deleted volume " + o.id);
      });
    } else if (o.kind == "key-pair") {
      p.set("KeyName", o.id);
      attempt("key-pair " + o.id, [&] {
        api_for(o.region).call("DeleteKeyPair", p);
        lines.push_back("deleted key pair " + o.id);
      });
    }
  }
  for (const Orphan& o : orphans) {
    if (o.kind == "security-group") {
      attempt("security-group " + o.id, [&] {
        // Tagged groups are long visible: "not found" is gone.
        if (delete_security_group(
                api_for(o.region), o.id, host, [] { return false; }, [] {})) {
          lines.push_back("deleted security group " + o.id);
        }
      });
    }
  }
  return lines;
}

}  // namespace gm::drivers::ec2
