// The registry row (flags), the batched `ls` refresh, and `gc`'s scan for orphans.
#include "drivers/ec2/ec2_driver.h"

#include "aws/xml.h"
#include "gm/error.h"
#include "http/curl_transport.h"
#include "util/log.h"
#include "util/time.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <thread>

namespace gm::drivers::ec2 {

namespace {

/// EC2 takes at most 200 filter values per call ("FilterLimitExceeded: The maximum number of
/// filter values specified on a single call is 200").
constexpr std::size_t k_ids_per_call = 200;

std::string region_subject() {
  return "ls";
}

/// What one region's worker found: instance id -> instance, or the error.
struct RegionResult {
  std::map<std::string, Instance> instances;
  std::string error;
  bool done = false;
};

/// Bounds every request by what is left of the overall deadline, so each worker ends on its
/// own in time and can simply be joined (no thread outlives `ls`).
class DeadlineTransport final : public http::Transport {
 public:
  explicit DeadlineTransport(std::chrono::steady_clock::time_point deadline)
      : m_deadline(deadline) {}
  http::Response send(const http::Request& request) override {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        m_deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds(0)) {
      throw http::TransportError(http::TransportError::Kind::timeout, request.url,
                                 "no answer within the deadline (--timeout)");
    }
    http::Request bounded = request;
    bounded.timeout = request.timeout ? std::min(*request.timeout, left) : left;
    return m_inner.send(bounded);
  }

 private:
  http::CurlTransport m_inner;
  std::chrono::steady_clock::time_point m_deadline;
};

RegionResult describe_region(const std::string& region, const std::vector<std::string>& ids,
                             std::chrono::steady_clock::time_point deadline) {
  RegionResult result;
  try {
    aws::ClientOptions options;
    options.region = region;
    options.transport = std::make_shared<DeadlineTransport>(deadline);  // one per thread
    options.sleep = [deadline](std::chrono::milliseconds d) {
      if (std::chrono::steady_clock::now() + d > deadline) {
        throw Error(region_subject(), "no answer within the deadline (--timeout)");
      }
      std::this_thread::sleep_for(d);
    };
    Ec2Api api(std::make_unique<aws::AwsClient>(std::move(options)));
    for (std::size_t i = 0; i < ids.size(); i += k_ids_per_call) {
      auto first = ids.begin() + static_cast<long>(i);
      auto last = ids.begin() + static_cast<long>(std::min(ids.size(), i + k_ids_per_call));
      for (Instance& inst : api.describe_instances({{"instance-id", {first, last}}})) {
        result.instances[inst.id] = std::move(inst);
      }
    }
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  result.done = true;
  return result;
}

}  // namespace

void list_states(std::vector<MachineRecord*>& records, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::map<std::string, std::vector<std::string>> ids_by_region;
  for (MachineRecord* r : records) {
    std::string id = r->driver_config.value("instance_id", "");
    std::string region = r->driver_config.value("region", "");
    if (!id.empty() && !region.empty()) {
      ids_by_region[region].push_back(id);
    }
  }
  // Regions in parallel, one client and transport per thread.
  std::map<std::string, RegionResult> results;
  std::vector<std::thread> workers;
  for (const auto& [region, ids] : ids_by_region) {
    RegionResult* slot = &results[region];
    workers.emplace_back(
        [slot, &region, &ids, deadline] { *slot = describe_region(region, ids, deadline); });
  }
  for (std::thread& t : workers) {
    t.join();
  }
  for (MachineRecord* r : records) {
    std::string id = r->driver_config.value("instance_id", "");
    std::string region = r->driver_config.value("region", "");
    if (id.empty()) {
      r->last_state = r->driver_config.value("create_incomplete", false) ? "pending" : "unknown";
      continue;
    }
    const RegionResult& res = results[region];
    if (!res.error.empty()) {
      bool late = res.error.find("deadline") != std::string::npos ||
                  std::chrono::steady_clock::now() >= deadline;
      r->last_state = late ? "unknown" : "error";
      r->facts["ls_error"] = region + ": " + res.error;
      continue;
    }
    auto it = res.instances.find(id);
    if (it == res.instances.end()) {
      r->last_state = "terminated";
      r->ssh.host.clear();
      continue;
    }
    r->last_state = std::string(to_string(map_state(it->second.state)));
    r->ssh.host = it->second.public_ip;
    r->facts["launched_at"] = it->second.launch_time;
  }
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

/// Why gc leaves \a o alone, or "" when it may go.
std::string kept_reason(const Orphan& o, const GcScope& scope,
                        std::optional<util::SystemTime> made) {
  if (scope.unreadable_names.contains(o.machine) && (o.home.empty() || o.home == scope.home_id)) {
    return "the local record of '" + o.machine +
           "' cannot be read (see `gpumachine ls`): fix it, or `gpumachine rm " + o.machine + "`";
  }
  if (!scope.all_homes && o.home.empty()) {
    return "no gpumachine:home tag (made by an older gpumachine, from any home); --all-homes "
           "includes it";
  }
  if (!scope.all_homes && o.home != scope.home_id) {
    return "another home's (gpumachine:home " + o.home.substr(0, 8) +
           "...: a teammate, CI, another computer); --all-homes includes it";
  }
  if (!made) {
    return "its age is unknown; delete it by hand if it is yours";
  }
  auto age =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *made);
  if (age < scope.min_age) {
    return "made " + util::human_duration(std::max(age, std::chrono::seconds(0))) +
           " ago; gc leaves anything younger than " + util::human_duration(scope.min_age) +
           " alone (a create may be under way)";
  }
  return "";
}

}  // namespace

std::vector<Orphan> find_orphans(const std::vector<std::string>& regions, const GcScope& scope) {
  std::vector<Orphan> out;
  for (const std::string& region : regions) {
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
      Orphan o{.resource = r, .machine = tag(r, k_tag_machine), .home = tag(r, k_tag_home)};
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
  std::map<std::string, std::unique_ptr<Ec2Api>> apis;
  auto api_for = [&](const std::string& region) -> Ec2Api& {
    auto& a = apis[region];
    if (!a) {
      a = std::make_unique<Ec2Api>(region);
    }
    return *a;
  };
  auto attempt = [&](const Orphan& o, const std::string& action, aws::QueryParams p) {
    try {
      api_for(o.resource.region).call(action, p);
      return true;
    } catch (const CloudError& e) {
      if (e.code().ends_with(".NotFound")) {
        return true;
      }
      lines.push_back("FAILED " + o.resource.kind + " " + o.resource.id + ": " + e.what());
      return false;
    }
  };
  // Instances first (their volumes and groups depend on them), then wait until they are gone.
  for (const Orphan& o : orphans) {
    if (o.resource.kind == "instance") {
      aws::QueryParams p;
      p.set("InstanceId.1", o.resource.id);
      if (attempt(o, "TerminateInstances", p)) {
        lines.push_back("terminating instance " + o.resource.id + " in " + o.resource.region);
      }
    }
  }
  for (const Orphan& o : orphans) {
    if (o.resource.kind != "instance") {
      continue;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto found =
          api_for(o.resource.region).describe_instances({{"instance-id", {o.resource.id}}});
      if (found.empty() || found.front().state == "terminated") {
        lines.push_back("terminated instance " + o.resource.id);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  for (const Orphan& o : orphans) {
    aws::QueryParams p;
    if (o.resource.kind == "volume" && o.resource.state == "available") {
      p.set("VolumeId", o.resource.id);
      if (attempt(o, "DeleteVolume", p)) {
        lines.push_back("deleted volume " + o.resource.id);
      }
    } else if (o.resource.kind == "key-pair") {
      p.set("KeyName", o.resource.id);
      if (attempt(o, "DeleteKeyPair", p)) {
        lines.push_back("deleted key pair " + o.resource.id);
      }
    }
  }
  for (const Orphan& o : orphans) {
    if (o.resource.kind != "security-group") {
      continue;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    std::chrono::milliseconds delay{1000};
    while (true) {
      try {
        aws::QueryParams p;
        p.set("GroupId", o.resource.id);
        api_for(o.resource.region).call("DeleteSecurityGroup", p);
        lines.push_back("deleted security group " + o.resource.id);
        break;
      } catch (const CloudError& e) {
        if (e.code().ends_with(".NotFound")) {
          break;
        }
        if (e.code() != "DependencyViolation" || std::chrono::steady_clock::now() > deadline) {
          lines.push_back("FAILED security-group " + o.resource.id + ": " + e.what());
          break;
        }
      }
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, std::chrono::milliseconds(10000));
    }
  }
  return lines;
}

DriverInfo driver_info() {
  DriverInfo info;
  info.name = "ec2";
  info.aliases = {"amazonec2"};
  info.description = "an instance in your own AWS account (EC2)";
  info.flags = {
      {.name = "ec2-region",
       .help = "AWS region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's region)",
       .aliases = {"amazonec2-region"}},
      {.name = "ec2-instance-type",
       .help = "instance type",
       .default_value = "g4dn.xlarge",
       .aliases = {"amazonec2-instance-type"}},
      {.name = "ec2-image",
       .help = "ubuntu-24.04, ubuntu-22.04, dlami-ubuntu-24.04, dlami-ubuntu-22.04, dlami-al2023 "
               "or an ami- id",
       .default_value = "dlami-ubuntu-24.04 for GPU types, ubuntu-24.04 for CPU types",
       .aliases = {"amazonec2-ami"}},
      {.name = "ec2-root-size",
       .help = "root volume size in GiB",
       .default_value = "100",
       .aliases = {"amazonec2-root-size"}},
      {.name = "ec2-volume-type",
       .help = "root volume type",
       .default_value = "gp3",
       .aliases = {"amazonec2-volume-type"}},
      {.name = "ec2-zone",
       .help = "availability zone: a letter or a full name (default: every zone offering the type)",
       .aliases = {"amazonec2-zone"}},
      {.name = "ec2-subnet-id", .help = "subnet to launch in", .aliases = {"amazonec2-subnet-id"}},
      {.name = "ec2-vpc-id", .help = "VPC to launch in", .aliases = {"amazonec2-vpc-id"}},
      {.name = "ec2-security-group-id",
       .help = "your own security group (repeatable; used as given, never modified)",
       .repeatable = true},
      {.name = "ec2-ssh-cidr",
       .help = "address range allowed to SSH in (default: this machine's public address /32)"},
      {.name = "ec2-open-port",
       .help = "also open PORT[/tcp|udp] to --ec2-ssh-cidr (repeatable)",
       .repeatable = true,
       .aliases = {"amazonec2-open-port"}},
      {.name = "ec2-spot",
       .help = "one-time spot instance",
       .is_switch = true,
       .aliases = {"amazonec2-request-spot-instance"}},
      {.name = "ec2-iam-instance-profile",
       .help = "instance profile name or ARN",
       .aliases = {"amazonec2-iam-instance-profile"}},
      {.name = "ec2-tag", .help = "extra tag KEY=VALUE (repeatable)", .repeatable = true},
      {.name = "ec2-user-data",
       .help = "file with your own user data (merged with gpumachine's as multi-part MIME)",
       .aliases = {"amazonec2-userdata"}},
      {.name = "ec2-ssh-user",
       .help = "login user",
       .default_value = "from the image: ubuntu or ec2-user",
       .aliases = {"amazonec2-ssh-user"}},
      {.name = "ec2-keypair-name",
       .help = "existing EC2 key pair to attach (gpumachine's own key is added through cloud-init)",
       .aliases = {"amazonec2-keypair-name"}},
  };
  info.make = [] { return make_driver(); };
  info.list_states = list_states;
  return info;
}

}  // namespace gm::drivers::ec2
