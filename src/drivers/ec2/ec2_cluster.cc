// Clusters (`create NAME --nodes N`, docs/clusters.md): the placement group and the security
// group's rule admitting the group itself, the N instances of one RunInstances adopted as the
// cluster's nodes, and state, start and stop acting on every node.
#include "drivers/ec2/ec2_internal.h"

#include "aws/xml.h"
#include "gm/error.h"
#include "machine/cluster_nodes.h"
#include "util/log.h"

#include <algorithm>

namespace gm::drivers::ec2 {

namespace {

std::vector<std::string> node_ids(const MachineRecord& record) {
  std::vector<std::string> ids;
  for (const ClusterNode& n : record.cluster->nodes) {
    ids.push_back(n.id);
  }
  return ids;
}

/// Each node's instance as EC2 describes it now (missing: not found).
std::map<std::string, Instance> describe_nodes(Ec2Api& api, const MachineRecord& record) {
  std::map<std::string, Instance> found;
  for (Instance& i : api.describe_instances({{"instance-id", node_ids(record)}})) {
    found[i.id] = std::move(i);
  }
  return found;
}

const std::vector<std::string> k_run_failures = {"shutting-down", "terminated", "stopping",
                                                 "stopped"};

}  // namespace

std::string cluster_subnet(Ec2Api& api, const Ec2Config& cfg, const std::string& zone) {
  if (!cfg.subnet_id.empty()) {
    return cfg.subnet_id;
  }
  if (auto it = cfg.zone_subnets.find(zone); it != cfg.zone_subnets.end()) {
    return it->second;
  }
  // The zone's default subnet: an EFA interface is made in a subnet named on the interface.
  aws::QueryParams p;
  p.add_filter("availability-zone", {zone});
  p.add_filter("default-for-az", {"true"});
  aws::QueryResult found = api.call("DescribeSubnets", p);
  auto items = aws::xml::items(found.root(), "subnetSet");
  return items.empty() ? "" : aws::xml::text(items.front(), "subnetId");
}

void Ec2Driver::ensure_placement_group(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  Resource* r = ledger(record, "placement-group");
  if (r != nullptr && r->status == "created") {
    return;
  }
  std::string name = resource_name(record);
  host.phase("creating placement group " + name + " (cluster)");
  set_ledger(record, "placement-group", name, "creating");
  save(record, host);
  aws::QueryParams p;
  p.set("GroupName", name);
  p.set("Strategy", "cluster");
  p.add_tag_specification("placement-group", machine_tags(record, m_cfg));
  try {
    api.call("CreatePlacementGroup", p);
  } catch (const CloudError& e) {
    if (e.code() != "InvalidPlacementGroup.Duplicate") {
      throw;
    }
    // Ours from an interrupted run (the answer was lost)? Only when it carries our id.
    aws::QueryParams d;
    d.add_filter("group-name", {name});
    d.add_filter("tag:" + std::string(k_tag_id), {record.id});
    aws::QueryResult found = api.call("DescribePlacementGroups", d);
    if (aws::xml::items(found.root(), "placementGroupSet").empty()) {
      throw Error(subject_of(record), "placement group " + name + " exists and is not this one's",
                  e.message(),
                  "delete it (`aws ec2 delete-placement-group --group-name " + name + "`)");
    }
  }
  set_ledger(record, "placement-group", name, "created");
  save(record, host);
}

void Ec2Driver::allow_cluster_traffic(Ec2Api& api, const std::string& group_id, DriverHost& host) {
  host.phase("allowing all traffic between the nodes (" + group_id + " admits itself)");
  aws::QueryParams p;
  p.set("GroupId", group_id);
  p.set("IpPermissions.1.IpProtocol", "-1");
  p.set("IpPermissions.1.Groups.1.GroupId", group_id);
  p.set("IpPermissions.1.Groups.1.Description", "the cluster's nodes");
  try {
    api.call("AuthorizeSecurityGroupIngress", p);
  } catch (const CloudError& e) {
    if (e.code() != "InvalidPermission.Duplicate") {
      throw;
    }
  }
}

void Ec2Driver::adopt_nodes(MachineRecord& record, std::vector<Instance> instances,
                            DriverHost& host) {
  if (instances.empty()) {
    return;
  }
  std::sort(instances.begin(), instances.end(), [](const Instance& a, const Instance& b) {
    return a.launch_index != b.launch_index ? a.launch_index < b.launch_index : a.id < b.id;
  });
  Cluster& cluster = *record.cluster;
  cluster.nodes.clear();
  for (const Instance& i : instances) {
    if (record.find_resource("instance", i.id) == nullptr) {
      record.resources.push_back(
          {.kind = "instance", .id = i.id, .region = record.size.region, .status = "created"});
    }
    cluster.nodes.push_back({.rank = static_cast<int>(cluster.nodes.size()), .id = i.id});
  }
  m_cfg.instance_id = instances.front().id;
  m_cfg.pending_launch = {};
  record.facts["availability_zone"] = instances.front().availability_zone;
  save(record, host);
}

void record_nodes(MachineRecord& record, const std::map<std::string, Instance>& found) {
  if (record.cluster->nodes.empty()) {
    return;  // not launched yet
  }
  for (ClusterNode& node : record.cluster->nodes) {
    auto it = found.find(node.id);
    if (it == found.end()) {
      node.last_state = "terminated";
      node.host.clear();
      continue;
    }
    node.last_state = std::string(to_string(map_state(it->second.state)));
    node.host = it->second.public_ip;
    if (!it->second.private_ip.empty()) {
      node.private_ip = it->second.private_ip;
    }
  }
  const ClusterNode& first = record.cluster->nodes.front();
  record.ssh.host = first.host;
  if (auto it = found.find(first.id); it != found.end()) {
    record.cost.launched_at = it->second.launch_time;
  }
  std::vector<std::string> states;
  for (const ClusterNode& node : record.cluster->nodes) {
    states.push_back(node.last_state);
  }
  record.last_state = machine::cluster_state(states);
}

void Ec2Driver::await_nodes(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  const Cluster& cluster = *record.cluster;
  if (cluster.nodes.size() != static_cast<std::size_t>(cluster.size)) {
    adopt_nodes(record, find_instances(api, record), host);  // the launch's answer showed some
  }
  if (cluster.nodes.size() != static_cast<std::size_t>(cluster.size)) {
    // One RunInstances with MinCount = N launches all or none: EC2 shows only some so far.
    throw Error(subject_of(record),
                "found " + std::to_string(cluster.nodes.size()) + " of the cluster's " +
                    std::to_string(cluster.size) + " instances",
                "EC2 may not show the others yet",
                "`gpumachine create " + record.name + "` looks again; `gpumachine rm " +
                    record.name + "` removes what was launched");
  }
  // They boot together: waiting for each in turn costs the slowest one's time.
  std::map<std::string, Instance> found;
  for (const ClusterNode& node : record.cluster->nodes) {
    host.phase("waiting for node " + std::to_string(node.rank) + " (" + node.id + ") to run");
    found[node.id] =
        *wait_for_state(api, record, node.id, {"running"}, k_run_failures, false, host);
  }
  record_nodes(record, found);
  for (ClusterNode& node : record.cluster->nodes) {
    // One RunInstances carries one user data: every node serves the key pinned for the cluster.
    node.host_key = record.ssh.host_key;
  }
  save(record, host);
  if (host.wait_target() != "ssh") {
    return;
  }
  for (int rank : machine::node_ranks(record)) {
    MachineRecord node = machine::node_record(record, rank);
    host.phase("waiting for SSH on node " + std::to_string(rank) + " (" + node.ssh.host + ")");
    wait_for_ssh(node, host);
  }
}

MachineState Ec2Driver::cluster_state(MachineRecord& record) {
  Ec2Api api(record.size.region);
  record_nodes(record, describe_nodes(api, record));
  return parse_state(record.last_state).value_or(MachineState::unknown);
}

void Ec2Driver::cluster_start(MachineRecord& record, DriverHost& host) {
  Ec2Api api(record.size.region);
  std::map<std::string, Instance> found = describe_nodes(api, record);
  std::vector<std::string> to_start;
  for (const ClusterNode& node : record.cluster->nodes) {
    auto it = found.find(node.id);
    std::string state = it == found.end() ? "terminated" : it->second.state;
    if (state == "terminated" || state == "shutting-down") {
      throw Error(subject_of(record),
                  "node " + std::to_string(node.rank) + " (" + node.id + ") is terminated", {},
                  "`gpumachine rm " + record.name + "` removes the cluster");
    }
    if (state == "stopping") {
      host.phase("waiting for " + node.id + " to finish stopping");
      wait_for_state(api, record, node.id, {"stopped"}, {"terminated"}, false, host);
    }
    if (state != "running" && state != "pending") {
      to_start.push_back(node.id);
    }
  }
  if (!to_start.empty()) {
    host.phase("starting " + std::to_string(to_start.size()) + " nodes");
    aws::QueryParams p;
    p.set_list("InstanceId", to_start);
    api.call("StartInstances", p);
  }
  await_nodes(api, record, host);
}

void Ec2Driver::cluster_power_off(MachineRecord& record, DriverHost& host, bool force) {
  Ec2Api api(record.size.region);
  host.phase(std::string(force ? "force-stopping " : "stopping ") +
             std::to_string(record.cluster->nodes.size()) + " nodes");
  stop_instances(api, record, node_ids(record), force, host);
  std::map<std::string, Instance> found;
  for (const ClusterNode& node : record.cluster->nodes) {
    host.phase("waiting for node " + std::to_string(node.rank) + " (" + node.id + ") to stop");
    found[node.id] =
        *wait_for_state(api, record, node.id, {"stopped"}, {"terminated"}, false, host);
  }
  record_nodes(record, found);  // public addresses are released on stop
  save(record, host);
}

void Ec2Driver::refuse_for_cluster(const MachineRecord& record, std::string_view what) {
  if (record.cluster) {
    throw UnsupportedError(subject_of(record),
                           "is a cluster: " + std::string(what) + " acts on one machine",
                           "`gpumachine stop " + record.name + "` and `gpumachine start " +
                               record.name + "` act on every node");
  }
}

}  // namespace gm::drivers::ec2
