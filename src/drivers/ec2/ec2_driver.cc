// The ec2 driver: the helpers its files share (flags, tags, the ledger, polling, SSH wait),
// the price quote, the factory, and the caller's address for the SSH rule.
#include "drivers/ec2/ec2_internal.h"

#include "aws/credentials.h"
#include "aws/endpoints.h"
#include "aws/xml.h"
#include "cost/cost.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "ssh/session.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/time.h"

#include <algorithm>
#include <cstdint>
#include <map>

namespace gm::drivers::ec2 {

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    out += (out.empty() ? "" : std::string(sep)) + p;
  }
  return out;
}

std::string single(const Options& options, const std::string& name, std::string fallback) {
  auto it = options.find(name);
  return it == options.end() || it->second.empty() ? fallback : it->second.back();
}

std::vector<std::string> all(const Options& options, const std::string& name) {
  auto it = options.find(name);
  return it == options.end() ? std::vector<std::string>{} : it->second;
}

std::string subject_of(const MachineRecord& record) {
  return "machine '" + record.name + "'";
}

Tags machine_tags(const MachineRecord& record, const Ec2Config& cfg) {
  Tags tags = {{"Name", record.name}, {k_tag_machine, record.name}, {k_tag_id, record.id}};
  for (const auto& [key, value] :
       {std::pair{k_tag_home, &cfg.home_id}, {k_tag_created, &cfg.tagged_at}}) {
    if (!value->empty()) {
      tags.emplace_back(key, *value);
    }
  }
  for (const auto& [k, v] : cfg.tags) {
    tags.emplace_back(k, v);
  }
  return tags;
}

std::string resource_name(const MachineRecord& record) {
  return "gpumachine-" + record.name + "-" + record.id.substr(0, 8);
}

Resource* ledger(MachineRecord& record, std::string_view kind) {
  for (Resource& r : record.resources) {
    if (r.kind == kind && r.status != "deleted") {
      return &r;
    }
  }
  return nullptr;
}

void set_ledger(MachineRecord& record, const std::string& kind, const std::string& id,
                const std::string& status) {
  const std::string& region = record.size.region;
  if (Resource* r = ledger(record, kind)) {
    r->id = id;
    r->status = status;
    return;
  }
  record.resources.push_back({.kind = kind, .id = id, .region = region, .status = status});
}

void pause(DriverHost& host, milliseconds d) {
  util::sleep_unless_interrupted(d);
  host.check_interrupted();
}

std::string own_security_group(Ec2Api& api, const MachineRecord& record, const std::string& name) {
  aws::QueryParams d;
  d.add_filter("group-name", {name});
  d.add_filter("tag:" + std::string(k_tag_id), {record.id});
  aws::QueryResult found = api.call("DescribeSecurityGroups", d);
  auto items = aws::xml::items(found.root(), "securityGroupInfo");
  return items.empty() ? "" : aws::xml::text(items.front(), "groupId");
}

std::chrono::seconds consistency_window() {
  if (const char* env = std::getenv("GPUMACHINE_EC2_CONSISTENCY_WINDOW");
      env != nullptr && *env != '\0') {
    if (std::optional<std::chrono::seconds> d = util::parse_duration(env)) {
      return *d;
    }
    throw UsageError("GPUMACHINE_EC2_CONSISTENCY_WINDOW '" + std::string(env) + "'",
                     "not a duration", "e.g. GPUMACHINE_EC2_CONSISTENCY_WINDOW=30s");
  }
  return std::chrono::minutes(2);
}

bool maybe_invisible(const MachineRecord& record, const std::string& stamp) {
  std::optional<util::SystemTime> at =
      util::parse_rfc3339(stamp.empty() ? record.created_at : stamp);
  return !at || std::chrono::system_clock::now() < *at + consistency_window();
}

bool is_throttling(const CloudError& e) {
  return e.code() == "RequestLimitExceeded" || e.code() == "Throttling" ||
         e.code() == "ThrottlingException";
}

std::optional<Instance> wait_for_state(Ec2Api& api, const MachineRecord& record,
                                       const std::string& id,
                                       const std::vector<std::string>& targets,
                                       const std::vector<std::string>& failures,
                                       bool missing_is_gone, DriverHost& host) {
  auto start = Clock::now();
  milliseconds interval = k_poll_first;
  std::string last = "?";
  while (true) {
    host.check_interrupted();
    try {
      std::vector<Instance> found = api.describe_instances({{"instance-id", {id}}});
      if (found.empty()) {
        if (missing_is_gone) {
          return std::nullopt;
        }
      } else {
        const Instance& i = found.front();
        last = i.state;
        if (std::find(targets.begin(), targets.end(), i.state) != targets.end()) {
          return i;
        }
        if (std::find(failures.begin(), failures.end(), i.state) != failures.end()) {
          throw Error(subject_of(record), "instance " + id + " went to " + i.state,
                      i.state_reason.empty() ? "" : i.state_reason,
                      "`gpumachine rm " + record.name + "` removes what is left");
        }
      }
      interval = Clock::now() - start > k_poll_slow_after
                     ? std::max(interval, k_poll_slow)
                     : std::max(interval, std::min(interval * 3 / 2, k_poll_fast));
    } catch (const CloudError& e) {
      if (!is_throttling(e)) {
        throw;
      }
      interval = std::min(interval * 2, k_poll_throttled_max);
      host.debug("ec2: throttled while polling; next poll in " + std::to_string(interval.count()) +
                 " ms");
    }
    if (Clock::now() - start > k_state_deadline) {
      throw Error(
          subject_of(record),
          "instance " + id + " did not reach " + join(targets, " or ") + " within 10 minutes",
          "last state: " + last,
          "check the EC2 console; `gpumachine status " + record.name + "` asks again");
    }
    pause(host, interval);
  }
}

aws::QueryParams ingress_rules(const Ec2Config& cfg, const std::string& group_id,
                               const std::string& cidr) {
  aws::QueryParams p;
  p.set("GroupId", group_id);
  std::vector<std::pair<int, std::string>> rules = {{22, "tcp"}};
  for (const OpenPort& port : cfg.open_ports) {
    rules.emplace_back(port.port, port.protocol);
  }
  for (std::size_t i = 0; i < rules.size(); ++i) {
    std::string prefix = "IpPermissions." + std::to_string(i + 1) + ".";
    p.set(prefix + "IpProtocol", rules[i].second);
    p.set(prefix + "FromPort", rules[i].first);
    p.set(prefix + "ToPort", rules[i].first);
    p.set(prefix + "IpRanges.1.CidrIp", cidr);
    p.set(prefix + "IpRanges.1.Description",
          rules[i].first == 22 ? std::string("ssh") : "--ec2-open-port");
  }
  return p;
}

void check_shutdown_behavior(const MachineRecord& record, std::string_view behavior) {
  if (behavior == "stop" && record.size.spot) {
    throw UsageError(subject_of(record) + ": autostop action 'stop'",
                     "a one-time spot instance cannot stop, only terminate (EC2 refuses it)",
                     "use --autostop-action terminate (autostop: --action terminate), or an "
                     "on-demand instance (no --ec2-spot) to keep the disk");
  }
}

bool is_connection_level(const SshError& e) {
  return e.stage() == SshError::Stage::connect || e.stage() == SshError::Stage::handshake;
}

void wait_for_ssh(const MachineRecord& record, DriverHost& host) {
  auto deadline = Clock::now() + k_ssh_deadline;
  milliseconds retry = k_ssh_retry_first;
  while (true) {
    machine::wait_for_port(record, host, deadline);
    try {
      std::unique_ptr<ssh::Session> session = machine::connect(record);
      return;
    } catch (const SshError& e) {
      // Auth may fail for a moment while cloud-init installs the login key; a wrong host key
      // never becomes right, so it ends the wait at once.
      bool transient = is_connection_level(e) || e.stage() == SshError::Stage::auth;
      if (!transient || Clock::now() > deadline) {
        throw;
      }
    }
    pause(host, retry);
    retry = std::min(retry * 2, k_ssh_retry);
  }
}

std::optional<PriceQuote> Ec2Driver::quote(const MachineRecord& record,
                                           const std::filesystem::path& home) {
  if (record.size.instance_type.empty() || record.size.region.empty()) {
    return std::nullopt;
  }
  if (record.size.spot && record.cost.spot_price) {
    return PriceQuote{.size = record.size.instance_type,
                      .region = record.size.region,
                      .spot = true,
                      .usd_per_hour = record.cost.spot_price,
                      .basis = "spot",
                      .origin = "record"};
  }
  return cost::quote_launch(record.size.instance_type, record.size.region, record.size.spot, home);
}

std::unique_ptr<Driver> make_driver() {
  return std::make_unique<Ec2Driver>();
}

MachineState map_state(std::string_view s) {
  static const std::map<std::string_view, MachineState> k_map = {
      {"pending", MachineState::pending},        {"running", MachineState::running},
      {"shutting-down", MachineState::stopping}, {"terminated", MachineState::terminated},
      {"stopping", MachineState::stopping},      {"stopped", MachineState::stopped},
  };
  auto it = k_map.find(s);
  if (it == k_map.end()) {
    util::debug("ec2: unmapped instance state '" + std::string(s) + "'");
    return MachineState::unknown;
  }
  return it->second;
}

}  // namespace gm::drivers::ec2
