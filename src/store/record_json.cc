// JSON form of the machine value types (the on-disk record schema, docs/cli.md "machine.json").
#include "gm/machine.h"

#include <array>
#include <utility>

namespace gm {

namespace {
constexpr std::array<std::pair<MachineState, std::string_view>, 8> k_state_names = {{
    {MachineState::unknown, "unknown"},
    {MachineState::pending, "pending"},
    {MachineState::running, "running"},
    {MachineState::stopping, "stopping"},
    {MachineState::stopped, "stopped"},
    {MachineState::terminated, "terminated"},
    {MachineState::unreachable, "unreachable"},
    {MachineState::error, "error"},
}};

template <typename T>
void get_opt(const nlohmann::json& j, const char* key, T& out) {
  if (auto it = j.find(key); it != j.end() && !it->is_null()) {
    it->get_to(out);
  }
}
}  // namespace

std::string_view to_string(MachineState state) {
  for (const auto& [s, name] : k_state_names) {
    if (s == state) {
      return name;
    }
  }
  return "unknown";
}

std::optional<MachineState> parse_state(std::string_view text) {
  for (const auto& [s, name] : k_state_names) {
    if (name == text) {
      return s;
    }
  }
  return std::nullopt;
}

Resource* MachineRecord::find_resource(std::string_view kind, std::string_view id) {
  for (Resource& r : resources) {
    if (r.kind == kind && r.id == id) {
      return &r;
    }
  }
  return nullptr;
}

void to_json(nlohmann::json& j, const SshTarget& t) {
  j = {{"host", t.host},
       {"port", t.port},
       {"user", t.user},
       {"key_path", t.key_path},
       {"host_key", t.host_key}};
}

void from_json(const nlohmann::json& j, SshTarget& t) {
  get_opt(j, "host", t.host);
  get_opt(j, "port", t.port);
  get_opt(j, "user", t.user);
  get_opt(j, "key_path", t.key_path);
  get_opt(j, "host_key", t.host_key);
}

void to_json(nlohmann::json& j, const Resource& r) {
  j = {{"kind", r.kind}, {"id", r.id}, {"region", r.region}, {"status", r.status}};
}

void from_json(const nlohmann::json& j, Resource& r) {
  get_opt(j, "kind", r.kind);
  get_opt(j, "id", r.id);
  get_opt(j, "region", r.region);
  get_opt(j, "status", r.status);
}

void to_json(nlohmann::json& j, const CreateProgress& p) {
  j = {{"incomplete", p.incomplete}, {"rolled_back", p.rolled_back}};
}

void from_json(const nlohmann::json& j, CreateProgress& p) {
  get_opt(j, "incomplete", p.incomplete);
  get_opt(j, "rolled_back", p.rolled_back);
}

void to_json(nlohmann::json& j, const MachineSize& s) {
  j = {{"region", s.region},       {"instance_type", s.instance_type},  {"spot", s.spot},
       {"vcpus", s.vcpus},         {"memory_mib", s.memory_mib},        {"gpu_count", s.gpu_count},
       {"gpu_model", s.gpu_model}, {"gpu_memory_mib", s.gpu_memory_mib}};
}

void from_json(const nlohmann::json& j, MachineSize& s) {
  get_opt(j, "region", s.region);
  get_opt(j, "instance_type", s.instance_type);
  get_opt(j, "spot", s.spot);
  get_opt(j, "vcpus", s.vcpus);
  get_opt(j, "memory_mib", s.memory_mib);
  get_opt(j, "gpu_count", s.gpu_count);
  get_opt(j, "gpu_model", s.gpu_model);
  get_opt(j, "gpu_memory_mib", s.gpu_memory_mib);
}

void to_json(nlohmann::json& j, const ProvisionChoices& p) {
  j = {{"overrides", p.overrides}, {"at_boot", p.at_boot}};
}

void from_json(const nlohmann::json& j, ProvisionChoices& p) {
  get_opt(j, "overrides", p.overrides);
  get_opt(j, "at_boot", p.at_boot);
}

void to_json(nlohmann::json& j, const AutostopPolicy& a) {
  j = {{"idle_seconds", a.idle_seconds},
       {"action", a.action},
       {"max_lifetime_seconds", a.max_lifetime_seconds},
       {"gpu_threshold", a.gpu_threshold}};
}

void from_json(const nlohmann::json& j, AutostopPolicy& a) {
  get_opt(j, "idle_seconds", a.idle_seconds);
  get_opt(j, "action", a.action);
  get_opt(j, "max_lifetime_seconds", a.max_lifetime_seconds);
  get_opt(j, "gpu_threshold", a.gpu_threshold);
}

void to_json(nlohmann::json& j, const CostControl& c) {
  j = {{"autostop", c.autostop ? nlohmann::json(*c.autostop) : nlohmann::json(nullptr)},
       {"agent_on_host", c.agent_on_host},
       {"power_off_action", c.power_off_action},
       {"launched_at", c.launched_at},
       {"spot_price", c.spot_price ? nlohmann::json(*c.spot_price) : nlohmann::json(nullptr)}};
}

void from_json(const nlohmann::json& j, CostControl& c) {
  if (auto it = j.find("autostop"); it != j.end() && !it->is_null()) {
    c.autostop = it->get<AutostopPolicy>();
  }
  get_opt(j, "agent_on_host", c.agent_on_host);
  get_opt(j, "power_off_action", c.power_off_action);
  get_opt(j, "launched_at", c.launched_at);
  if (auto it = j.find("spot_price"); it != j.end() && !it->is_null()) {
    c.spot_price = it->get<double>();
  }
}

void to_json(nlohmann::json& j, const ClusterNode& n) {
  j = {{"rank", n.rank},         {"id", n.id},
       {"host", n.host},         {"private_ip", n.private_ip},
       {"host_key", n.host_key}, {"last_state", n.last_state}};
}

void from_json(const nlohmann::json& j, ClusterNode& n) {
  get_opt(j, "rank", n.rank);
  get_opt(j, "id", n.id);
  get_opt(j, "host", n.host);
  get_opt(j, "private_ip", n.private_ip);
  get_opt(j, "host_key", n.host_key);
  get_opt(j, "last_state", n.last_state);
}

void to_json(nlohmann::json& j, const Cluster& c) {
  j = {{"size", c.size}, {"nodes", c.nodes}};
}

void from_json(const nlohmann::json& j, Cluster& c) {
  get_opt(j, "size", c.size);
  get_opt(j, "nodes", c.nodes);
}

void to_json(nlohmann::json& j, const MachineRecord& r) {
  j = {
      {"schema_version", r.schema_version},
      {"name", r.name},
      {"id", r.id},
      {"driver", r.driver},
      {"progress", r.progress},
      {"size", r.size},
      {"provision", r.provision},
      {"cost", r.cost},
      {"driver_config", r.driver_config},
      {"ssh", r.ssh},
      {"created_at", r.created_at},
      {"updated_at", r.updated_at},
      {"resources", r.resources},
      {"facts", r.facts},
      {"timings", r.timings},
      {"last_state", r.last_state},
  };
  if (r.cluster) {
    j["cluster"] = *r.cluster;
  }
}

void from_json(const nlohmann::json& j, MachineRecord& r) {
  get_opt(j, "schema_version", r.schema_version);
  get_opt(j, "name", r.name);
  get_opt(j, "id", r.id);
  get_opt(j, "driver", r.driver);
  get_opt(j, "progress", r.progress);
  get_opt(j, "size", r.size);
  get_opt(j, "provision", r.provision);
  get_opt(j, "cost", r.cost);
  get_opt(j, "driver_config", r.driver_config);
  get_opt(j, "ssh", r.ssh);
  get_opt(j, "created_at", r.created_at);
  get_opt(j, "updated_at", r.updated_at);
  get_opt(j, "resources", r.resources);
  get_opt(j, "facts", r.facts);
  get_opt(j, "timings", r.timings);
  get_opt(j, "last_state", r.last_state);
  if (auto it = j.find("cluster"); it != j.end() && !it->is_null()) {
    r.cluster = it->get<Cluster>();
  }
}

}  // namespace gm
