// State, start, stop, kill and restart; the power-off action; the security group's source range
// (ssh-allow) and why SSH may not get through.
#include "drivers/ec2/ec2_internal.h"

#include "drivers/ec2/host_key.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "util/log.h"

namespace gm::drivers::ec2 {

namespace {

/// \a id, the machine's instance; throws when create has not made one yet, with \a hint (by
/// default: finish the create).
std::string existing_instance(std::string id, const MachineRecord& record, std::string hint = {}) {
  if (id.empty()) {
    throw Error(subject_of(record), "has no instance yet", {},
                hint.empty() ? "run `gpumachine create " + record.name + "` to finish creating it"
                             : std::move(hint));
  }
  return id;
}

}  // namespace

MachineState Ec2Driver::state(MachineRecord& record, DriverHost&) {
  Bound bound(*this, record);
  std::string id = instance_id();
  if (id.empty()) {
    return record.progress.incomplete ? MachineState::pending : MachineState::unknown;
  }
  if (record.cluster) {
    return cluster_state(record);
  }
  Ec2Api api(record.size.region);
  std::vector<Instance> found = api.describe_instances({{"instance-id", {id}}});
  if (found.empty()) {
    return MachineState::terminated;
  }
  MachineState s = map_state(found.front().state);
  if (s == MachineState::running && !found.front().public_ip.empty()) {
    record.ssh.host = found.front().public_ip;
  }
  return s;
}

void Ec2Driver::start(MachineRecord& record, DriverHost& host) {
  Bound bound(*this, record);
  std::string id = existing_instance(instance_id(), record);
  if (record.cluster) {
    cluster_start(record, host);
    return;
  }
  Ec2Api api(record.size.region);
  std::vector<Instance> found = api.describe_instances({{"instance-id", {id}}});
  if (found.empty() || found.front().state == "terminated" ||
      found.front().state == "shutting-down") {
    throw Error(subject_of(record), "instance " + id + " is terminated", {},
                "`gpumachine rm " + record.name + "` removes the record");
  }
  if (found.front().state == "stopping") {
    host.phase("waiting for " + id + " to finish stopping");
    wait_for_state(api, record, id, {"stopped"}, {"terminated"}, false, host);
  }
  if (found.front().state != "running" && found.front().state != "pending") {
    host.phase("starting " + id);
    aws::QueryParams p;
    p.set("InstanceId.1", id);
    api.call("StartInstances", p);
  }
  host.phase("waiting for " + id + " to run");
  std::optional<Instance> running = wait_for_state(
      api, record, id, {"running"}, {"shutting-down", "terminated", "stopped"}, false, host);
  record_address(record, *running);
  save(record, host);  // new address -> record and ssh_config
  if (host.wait_target() == "ssh") {
    host.phase("waiting for SSH on " + record.ssh.host);
    wait_for_ssh(record, host);
    replace_user_data_host_key(record, m_cfg, host);
  }
}

void Ec2Driver::power_off(MachineRecord& record, DriverHost& host, bool force) {
  Bound bound(*this, record);
  std::string id = existing_instance(
      instance_id(), record, "`gpumachine rm " + record.name + "` removes what was created");
  if (record.cluster) {
    cluster_power_off(record, host, force);
    return;
  }
  Ec2Api api(record.size.region);
  host.phase(std::string(force ? "force-stopping " : "stopping ") + id);
  stop_instances(api, record, {id}, force, host);
  host.phase("waiting for " + id + " to stop");
  wait_for_state(api, record, id, {"stopped"}, {"terminated"}, false, host);
  record.ssh.host.clear();  // the public address is released on stop
  record.last_state = "stopped";
  save(record, host);
}

void stop_instances(Ec2Api& api, const MachineRecord& record, const std::vector<std::string>& ids,
                    bool force, DriverHost& host) {
  aws::QueryParams p;
  p.set_list("InstanceId", ids);
  if (force) {
    p.set("Force", true);
  }
  try {
    api.call("StopInstances", p);
  } catch (const CloudError& e) {
    if (e.code() != "IncorrectInstanceState") {
      throw;
    }
    // One still pending: wait until each runs (or stopped), then stop them.
    for (const std::string& id : ids) {
      wait_for_state(api, record, id, {"running", "stopped"}, {"terminated"}, false, host);
    }
    api.call("StopInstances", p);
  }
}

void Ec2Driver::set_power_off_action(MachineRecord& record, DriverHost& host,
                                     std::string_view behavior) {
  Bound bound(*this, record);
  refuse_for_cluster(record, "setting the power-off action");
  check_shutdown_behavior(record, behavior);
  std::string id = existing_instance(instance_id(), record);
  Ec2Api api(record.size.region);
  host.phase("setting " + id + "'s shutdown behavior to " + std::string(behavior));
  aws::QueryParams p;
  p.set("InstanceId", id);
  p.set("InstanceInitiatedShutdownBehavior.Value", std::string(behavior));
  api.call("ModifyInstanceAttribute", p);
  record.cost.power_off_action = std::string(behavior);
  save(record, host);
}

std::pair<std::string, std::string> Ec2Driver::allow_ssh_from(MachineRecord& record,
                                                              DriverHost& host,
                                                              const std::string& wanted) {
  Bound bound(*this, record);
  Ec2Config& cfg = m_cfg;
  if (!cfg.security_group_ids.empty()) {
    throw UsageError(subject_of(record),
                     "uses your own security groups (--ec2-security-group-id), which gpumachine "
                     "never modifies",
                     "change their rules in the EC2 console or with `aws ec2 "
                     "authorize-security-group-ingress`");
  }
  Resource* sg = ledger(record, "security-group");
  if (sg == nullptr || sg->status != "created" || !sg->id.starts_with("sg-")) {
    throw Error(subject_of(record), "has no security group of its own yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  std::string cidr = wanted.empty() ? caller_cidr("--ec2-ssh-cidr") : wanted;
  std::optional<std::string> network = cidr_network(cidr);
  if (!network || *network != cidr) {
    throw UsageError("--cidr '" + cidr + "'", "not an IPv4 CIDR block with no host bits set",
                     "e.g. --cidr 203.0.113.5/32");
  }
  std::string old = cfg.ssh_cidr;
  if (cidr == old) {
    return {old, cidr};
  }
  Ec2Api api(record.size.region);
  // The new rule first, so SSH is never shut out in between.
  host.phase("allowing SSH to " + sg->id + " from " + cidr);
  try {
    api.call("AuthorizeSecurityGroupIngress", ingress_rules(cfg, sg->id, cidr));
  } catch (const CloudError& e) {
    if (e.code() != "InvalidPermission.Duplicate") {
      throw;
    }
  }
  cfg.ssh_cidr = cidr;
  save(record, host);
  if (!old.empty()) {
    host.phase("removing the rule for " + old);
    try {
      api.call("RevokeSecurityGroupIngress", ingress_rules(cfg, sg->id, old));
    } catch (const CloudError& e) {
      if (e.code() != "InvalidPermission.NotFound") {
        throw;
      }
    }
  }
  return {old, cidr};
}

std::string Ec2Driver::explain_unreachable(const MachineRecord& record) {
  const auto cfg = record.driver_config.get<Ec2Config>();
  std::string allowed = cfg.ssh_cidr;
  if (!cfg.security_group_ids.empty() || !allowed.ends_with("/32")) {
    return {};
  }
  static std::optional<std::string> here;  // one lookup per process: create retries connects
  if (!here) {
    try {
      here = caller_cidr("--ec2-ssh-cidr");
    } catch (const Error&) {
      here = "";
    }
  }
  if (here->empty() || *here == allowed) {
    return {};
  }
  return "this computer's public address is now " + *here + ", but the security group of '" +
         record.name + "' lets SSH in only from " + allowed + ": `gpumachine ssh-allow " +
         record.name + "` replaces that rule";
}

void Ec2Driver::restart(MachineRecord& record, DriverHost& host) {
  Bound bound(*this, record);
  refuse_for_cluster(record, "restart");
  std::string id = existing_instance(instance_id(), record);
  Ec2Api api(record.size.region);
  // The boot before the reboot, so the wait below is not ended by the old boot's sshd, which
  // keeps answering until the guest begins to shut down. Unreachable now: any answer is new.
  std::string old_boot;
  if (host.wait_target() == "ssh") {
    old_boot = machine::boot_before_reboot(record);
  }
  host.phase("rebooting " + id);
  aws::QueryParams p;
  p.set("InstanceId.1", id);
  api.call("RebootInstances", p);
  std::optional<Instance> running =
      wait_for_state(api, record, id, {"running"}, {"terminated", "stopped"}, false, host);
  record_address(record, *running);
  save(record, host);
  if (host.wait_target() == "ssh") {
    host.phase("waiting for " + record.name + " to come back from the reboot");
    machine::wait_for_new_boot(record, host, old_boot, k_ssh_deadline);
    replace_user_data_host_key(record, m_cfg, host);
  }
}

}  // namespace gm::drivers::ec2
