// The create pipeline: record -> keys -> key pair -> security group -> RunInstances with AZ
// failover and ClientToken resume -> running -> SSH with the pinned host key.
#include "drivers/ec2/ec2_internal.h"

#include "aws/xml.h"
#include "drivers/ec2/host_key.h"
#include "drivers/ec2/user_data.h"
#include "gm/error.h"
#include "ssh/keys.h"
#include "util/crypto.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/time.h"

#include <algorithm>
#include <map>

namespace gm::drivers::ec2 {

void Ec2Driver::ensure_local_keys(MachineRecord& record, DriverHost& host) {
  // Both keys are made once and reused on resume: the user data (and so the ClientToken's
  // parameters) must be the same bytes each time.
  // A pair is only used (imported, put into user data) once whole, so a half-written one (a
  // kill between its two files) is safe to make again.
  ssh::ensure_key_pair(record.ssh.key_path, "gpumachine-" + record.name);
  if (m_cfg.host_key_replaced) {
    return;  // the pin is the key made on the host, and the launch is long done
  }
  // Only the plain Ubuntu images get the provisioning prelude: the Deep Learning AMIs already
  // have everything, and an unknown ami- has no known recipe.
  const std::string& alias = m_cfg.image_alias;
  BootImage image;
  if (alias.starts_with("ubuntu-")) {
    image.os_id = "ubuntu";
    image.os_version = alias.substr(std::string("ubuntu-").size());
  }
  // The 8-GPU HGX boards (p4d, p5*, p6) have NVSwitches and need Fabric Manager.
  std::string family = record.size.instance_type.substr(0, record.size.instance_type.find('.'));
  image.nvswitch =
      family == "p4d" || family == "p4de" || family.starts_with("p5") || family.starts_with("p6");
  m_boot = host.boot_script(record, image);
}

void Ec2Driver::import_key_pair(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  Ec2Config& cfg = m_cfg;
  if (!cfg.keypair_name.empty()) {
    return;  // the user's own pair; ours goes in through cloud-init's ssh_authorized_keys
  }
  Resource* r = ledger(record, "key-pair");
  if (r != nullptr && r->status == "created") {
    return;
  }
  std::string name = resource_name(record);
  host.phase("importing key pair " + name);
  set_ledger(record, "key-pair", name, "creating");
  cfg.key_name = name;
  save(record, host);
  aws::QueryParams p;
  p.set("KeyName", name);
  p.set("PublicKeyMaterial", util::base64_encode(util::read_file(record.ssh.key_path + ".pub")));
  p.add_tag_specification("key-pair", machine_tags(record, m_cfg));
  try {
    api.call("ImportKeyPair", p);
  } catch (const CloudError& e) {
    if (e.code() != "InvalidKeyPair.Duplicate") {
      throw;
    }
    // Ours from an interrupted run (the answer was lost)? Only when it carries our id.
    aws::QueryParams d;
    d.add_filter("key-name", {name});
    d.add_filter("tag:" + std::string(k_tag_id), {record.id});
    aws::QueryResult found = api.call("DescribeKeyPairs", d);
    if (aws::xml::items(found.root(), "keySet").empty()) {
      throw Error(subject_of(record), "key pair " + name + " exists and is not this machine's",
                  e.message(), "delete it (`aws ec2 delete-key-pair --key-name " + name + "`)");
    }
  }
  set_ledger(record, "key-pair", name, "created");
  save(record, host);
}

void Ec2Driver::ensure_security_group(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  Ec2Config& cfg = m_cfg;
  if (!cfg.security_group_ids.empty()) {
    return;  // the user's own groups, used as given and never modified
  }
  Resource* r = ledger(record, "security-group");
  if (r != nullptr && r->status == "created" && cfg.sg_ingress_done) {
    return;
  }
  std::string name = resource_name(record);
  host.phase("creating security group " + name);
  std::string cidr = cfg.ssh_cidr;
  if (cidr.empty()) {
    cidr = caller_cidr("--ec2-ssh-cidr");
    cfg.ssh_cidr = cidr;
  }
  std::string group_id = (r != nullptr && r->id.starts_with("sg-")) ? r->id : "";
  if (group_id.empty()) {
    set_ledger(record, "security-group", name, "creating");
    cfg.sg_name = name;
    cfg.sg_created_at = util::rfc3339(std::chrono::system_clock::now());
    save(record, host);
    aws::QueryParams p;
    p.set("GroupName", name);
    p.set("GroupDescription", "gpumachine " + record.name + ": SSH from " + cidr);
    if (!cfg.vpc_id.empty()) {
      p.set("VpcId", cfg.vpc_id);
    }
    p.add_tag_specification("security-group", machine_tags(record, m_cfg));
    try {
      aws::QueryResult made = api.call("CreateSecurityGroup", p);
      group_id = aws::xml::text(made.root(), "groupId");
    } catch (const CloudError& e) {
      if (e.code() != "InvalidGroup.Duplicate") {
        throw;
      }
      group_id = own_security_group(api, record, name);
      if (group_id.empty()) {
        throw Error(subject_of(record), "security group " + name + " exists and is not ours",
                    e.message(), "delete it, then run `gpumachine create " + record.name + "`");
      }
    }
    set_ledger(record, "security-group", group_id, "created");
    save(record, host);
  }
  aws::QueryParams p = ingress_rules(cfg, group_id, cidr);
  // A group just created may not be visible yet (eventual consistency): wait it out.
  milliseconds delay{500};
  auto deadline = Clock::now() + std::chrono::minutes(2);
  while (true) {
    try {
      api.call("AuthorizeSecurityGroupIngress", p);
      break;
    } catch (const CloudError& e) {
      if (e.code() == "InvalidPermission.Duplicate") {
        break;
      }
      if (e.code() != "InvalidGroup.NotFound" || Clock::now() > deadline) {
        throw;
      }
      host.debug("ec2: " + group_id + " not visible yet; retrying");
    }
    pause(host, delay);
    delay = std::min(delay * 2, milliseconds(5000));
  }
  if (record.cluster) {
    allow_cluster_traffic(api, group_id, host);
  }
  cfg.sg_ingress_done = true;
  save(record, host);
}

aws::QueryParams Ec2Driver::run_params(const MachineRecord& record, const std::string& zone,
                                       const std::string& subnet, const std::string& token) {
  const Ec2Config& cfg = m_cfg;
  aws::QueryParams p;
  p.set("ImageId", cfg.image_id);
  p.set("InstanceType", record.size.instance_type);
  // A cluster is one request for all its nodes: all of them or none (MinCount = MaxCount).
  int count = record.cluster ? record.cluster->size : 1;
  p.set("MinCount", count);
  p.set("MaxCount", count);
  std::string keypair = cfg.keypair_name;
  p.set("KeyName", keypair.empty() ? cfg.key_name : keypair);
  std::vector<std::string> groups = cfg.security_group_ids;
  if (groups.empty()) {
    const Resource* sg = nullptr;
    for (const Resource& r : record.resources) {
      if (r.kind == "security-group" && r.status == "created") {
        sg = &r;
      }
    }
    groups.push_back(sg != nullptr ? sg->id : "");
  }
  p.set("ClientToken", token);
  for (const Resource& r : record.resources) {
    if (r.kind == "placement-group" && r.status == "created") {
      p.set("Placement.GroupName", r.id);
    }
  }
  if (record.cluster && cfg.efa) {
    // The primary interface is the EFA one, in the cluster's subnet and group.
    p.set("NetworkInterface.1.DeviceIndex", 0);
    p.set("NetworkInterface.1.InterfaceType", "efa");
    p.set("NetworkInterface.1.SubnetId", subnet);
    p.set_list("NetworkInterface.1.SecurityGroupId", groups);
    p.set("NetworkInterface.1.AssociatePublicIpAddress", true);
    p.set("NetworkInterface.1.DeleteOnTermination", true);
    if (!zone.empty()) {
      p.set("Placement.AvailabilityZone", zone);
    }
  } else {
    p.set_list("SecurityGroupId", groups);
    if (!subnet.empty()) {
      p.set("SubnetId", subnet);
    } else if (!zone.empty()) {
      p.set("Placement.AvailabilityZone", zone);
    }
  }
  p.set("BlockDeviceMapping.1.DeviceName", cfg.root_device);
  p.set("BlockDeviceMapping.1.Ebs.VolumeSize", cfg.root_size);
  p.set("BlockDeviceMapping.1.Ebs.VolumeType", cfg.volume_type);
  p.set("BlockDeviceMapping.1.Ebs.DeleteOnTermination", true);
  p.set("MetadataOptions.HttpTokens", "required");
  p.set("MetadataOptions.HttpEndpoint", "enabled");
  p.set("MetadataOptions.HttpPutResponseHopLimit", 2);
  p.set("InstanceInitiatedShutdownBehavior", record.cost.power_off_action);
  if (record.size.spot) {
    p.set("InstanceMarketOptions.MarketType", "spot");
    p.set("InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time");
    p.set("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate");
  }
  std::string profile = cfg.iam_instance_profile;
  if (!profile.empty()) {
    p.set(profile.starts_with("arn:") ? "IamInstanceProfile.Arn" : "IamInstanceProfile.Name",
          profile);
  }
  Tags tags = machine_tags(record, m_cfg);
  p.add_tag_specification("instance", tags);
  p.add_tag_specification("volume", tags);
  p.add_tag_specification("network-interface", tags);
  if (record.size.spot) {
    p.add_tag_specification("spot-instances-request", tags);
  }
  UserDataParts parts;
  parts.host_private_key = m_boot.host_private_key;
  parts.host_public_key = m_boot.host_public_key;
  if (!keypair.empty()) {
    std::string pub = util::read_file(record.ssh.key_path + ".pub");
    parts.authorized_keys.push_back(pub.substr(0, pub.find('\n')));
  }
  std::string user_file = cfg.user_data_file;
  if (!user_file.empty()) {
    parts.user_data = util::read_file(user_file);
  }
  parts.boundary = "==gpumachine-" + record.id + "==";
  parts.provision_prelude = m_boot.script;
  p.set("UserData", util::base64_encode(user_data_for_ec2(render_user_data(parts),
                                                          "machine '" + record.name + "'")));
  return p;
}

std::vector<Instance> Ec2Driver::find_instances(Ec2Api& api, const MachineRecord& record) {
  // By tag (tags are applied atomically at launch) and by every ClientToken we ever sent.
  std::map<std::string, Instance> found;
  for (Instance& i : api.describe_instances({{"tag:" + std::string(k_tag_id), {record.id}}})) {
    found[i.id] = std::move(i);
  }
  const Ec2Config& cfg = m_cfg;
  if (!cfg.client_tokens.empty()) {
    for (Instance& i : api.describe_instances({{"client-token", cfg.client_tokens}})) {
      found[i.id] = std::move(i);
    }
  }
  std::vector<Instance> out;
  for (auto& [id, i] : found) {
    if (i.state != "terminated") {
      out.push_back(std::move(i));
    }
  }
  return out;
}

void Ec2Driver::await_pending_launch(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  // A RunInstances whose answer never came launched something until proven otherwise: look it
  // up by its token until EC2's consistency window has passed (an empty answer within it proves
  // nothing).
  Ec2Config& cfg = m_cfg;
  if (!cfg.pending_launch) {
    return;
  }
  std::string token = cfg.pending_launch.token;
  std::string at = cfg.pending_launch.at;
  while (true) {
    std::vector<Instance> found = api.describe_instances({{"client-token", {token}}});
    if (!found.empty()) {
      adopt_launch(record, found, host);  // terminate_all takes it from the ledger
      return;
    }
    if (!maybe_invisible(record, at)) {
      cfg.pending_launch = {};  // proven: nothing was launched
      save(record, host);
      return;
    }
    host.phase("looking for the launch whose answer never came (EC2 may not show it yet)");
    pause(host, k_poll_slow);
  }
}

void Ec2Driver::adopt(MachineRecord& record, const Instance& instance, DriverHost& host) {
  set_ledger(record, "instance", instance.id, "created");
  m_cfg.instance_id = instance.id;
  m_cfg.pending_launch = {};
  record.facts["availability_zone"] = instance.availability_zone;
  save(record, host);
}

void Ec2Driver::adopt_launch(MachineRecord& record, const std::vector<Instance>& found,
                             DriverHost& host) {
  if (record.cluster) {
    adopt_nodes(record, found, host);
  } else {
    adopt(record, found.front(), host);
  }
}

void Ec2Driver::record_address(MachineRecord& record, const Instance& instance) {
  record.ssh.host = instance.public_ip;
  record.cost.launched_at = instance.launch_time;
  record.facts["availability_zone"] = instance.availability_zone;
  record.last_state = std::string(to_string(map_state(instance.state)));
}

void Ec2Driver::launch(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  Ec2Config& cfg = m_cfg;
  if (!instance_id().empty()) {
    return;
  }
  // An earlier run may have launched it and died before writing the id down.
  if (!cfg.client_tokens.empty()) {
    std::vector<Instance> existing = find_instances(api, record);
    if (!existing.empty()) {
      util::info("found instance " + existing.front().id + " from an earlier attempt");
      adopt_launch(record, existing, host);
      return;
    }
  }
  std::string subnet = cfg.subnet_id;
  std::vector<std::string> zones = subnet.empty() ? cfg.zones : std::vector<std::string>{""};
  std::string reuse_token;
  if (cfg.pending_launch) {
    // The last request's outcome was never seen: repeat it exactly (same zone, same token) so
    // EC2's idempotency returns that launch instead of making a second one.
    std::string zone = cfg.pending_launch.zone;
    reuse_token = cfg.pending_launch.token;
    std::erase(zones, zone);
    zones.insert(zones.begin(), zone);
  }
  std::vector<std::string> attempts;
  std::string type = record.size.instance_type;
  for (const std::string& zone : zones) {
    host.check_interrupted();
    std::string token = reuse_token.empty() ? util::uuid4() : reuse_token;
    reuse_token.clear();
    cfg.client_tokens.push_back(token);
    cfg.pending_launch = {
        .zone = zone, .token = token, .at = util::rfc3339(std::chrono::system_clock::now())};
    save(record, host);
    std::string zone_subnet = subnet;
    if (zone_subnet.empty() && cfg.zone_subnets.contains(zone)) {
      zone_subnet = cfg.zone_subnets.at(zone);
    }
    if (zone_subnet.empty() && record.cluster && cfg.efa) {
      zone_subnet = cluster_subnet(api, cfg, zone);
    }
    std::string where = zone.empty() ? "subnet " + subnet : zone;
    host.phase("launching " + type + " in " + where);
    aws::QueryResult result;
    try {
      result = api.call("RunInstances", run_params(record, zone, zone_subnet, token));
    } catch (const CloudError& e) {
      cfg.pending_launch = {};
      if (e.code() == "IdempotentInstanceTerminated" || !is_zone_error(e.code())) {
        save(record, host);
        throw;
      }
      attempts.push_back(where + ": " + e.code());
      util::info("  " + where + ": " + e.code() + " (" + e.message() + "); trying the next zone");
      save(record, host);
      continue;
    } catch (const Error&) {
      // No answer (connection lost after the retries): it may have launched. Look before
      // giving up; pending_launch stays so a re-run repeats this exact request.
      std::vector<Instance> existing = api.describe_instances({{"client-token", {token}}});
      if (!existing.empty()) {
        adopt_launch(record, existing, host);
        return;
      }
      throw;
    }
    std::vector<Instance> launched = parse_instances(result.root());
    if (launched.empty()) {
      throw Error(subject_of(record), "RunInstances returned no instance", result.request_id);
    }
    adopt_launch(record, launched, host);
    return;
  }
  cfg.zone_attempts = attempts;
  throw Error(subject_of(record),
              "no zone of " + api.region() + " could launch " + type + " (tried " +
                  std::to_string(attempts.size()) + ")",
              join(attempts, "; "),
              "try again later, another --ec2-instance-type, or another --ec2-region");
}

void Ec2Driver::rollback(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  // Nothing was launched: take back the key pair and group so a failed create leaves nothing.
  try {
    remove(record, host);
    record.progress.rolled_back = true;
    save(record, host);
  } catch (const Error& e) {
    util::warn(subject_of(record) + ": could not undo the partial create: " + e.what() +
               "; `gpumachine rm " + record.name + "` finishes it");
  }
  (void)api;
}

void Ec2Driver::create(MachineRecord& record, DriverHost& host) {
  Bound bound(*this, record);
  Ec2Config& cfg = m_cfg;
  check_shutdown_behavior(record, record.cost.power_off_action);
  if (cfg.tagged_at.empty() && cfg.client_tokens.empty()) {
    // Fixed once (a resumed launch must repeat its parameters): the tags gc tells homes and
    // ages apart by.
    cfg.home_id = host.home_id();
    cfg.tagged_at = util::rfc3339(std::chrono::system_clock::now());
  }
  Ec2Api api(record.size.region);
  if (cfg.image_id.empty()) {
    preflight(api, record, host);
  }
  host.check_interrupted();
  record.progress.incomplete = true;
  save(record, host);  // the record exists before anything is created
  try {
    ensure_local_keys(record, host);
    save(record, host);
    import_key_pair(api, record, host);
    host.check_interrupted();
    ensure_security_group(api, record, host);
    host.check_interrupted();
    if (record.cluster) {
      ensure_placement_group(api, record, host);
      host.check_interrupted();
    }
    launch(api, record, host);
  } catch (const CloudError&) {
    if (instance_id().empty() && !cfg.pending_launch) {
      rollback(api, record, host);
    }
    throw;
  } catch (const UsageError&) {
    if (instance_id().empty() && !cfg.pending_launch) {
      rollback(api, record, host);
    }
    throw;
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error& e) {
    // The all-zones failure is definitive; a lost connection is not (keep it for a resume).
    if (instance_id().empty() && !cfg.pending_launch && !cfg.zone_attempts.empty()) {
      rollback(api, record, host);
    }
    throw;
  }
  if (record.cluster) {
    await_nodes(api, record, host);
    record.progress.incomplete = false;
    save(record, host);
    return;
  }
  host.phase("waiting for " + instance_id() + " to run");
  std::optional<Instance> running;
  try {
    running = wait_for_state(api, record, instance_id(), {"running"},
                             {"shutting-down", "terminated", "stopping", "stopped"}, false, host);
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error& e) {
    if (e.subject() == subject_of(record)) {
      throw;  // the instance's own outcome (it stopped, or never ran in time)
    }
    // EC2 could not be asked; the launch stands, so say what keeps billing.
    throw Error(subject_of(record),
                "instance " + instance_id() + " in " + api.region() +
                    " was launched and is running and billing, but its state cannot be read",
                e.what(),
                "`gpumachine create " + record.name + "` resumes the wait; `gpumachine rm " +
                    record.name + "` terminates it");
  }
  record_address(record, *running);
  save(record, host);
  if (host.wait_target() == "ssh") {
    host.phase("waiting for SSH on " + record.ssh.host);
    wait_for_ssh(record, host);
    replace_user_data_host_key(record, m_cfg, host);
  }
  record.progress.incomplete = false;
  record.last_state = "running";
  save(record, host);
}

}  // namespace gm::drivers::ec2
