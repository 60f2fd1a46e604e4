#include "store/record_migrate.h"

#include "gm/machine.h"

#include <cstdlib>
#include <string>

namespace gm::store {

namespace {

/// Moves obj[key] (when present) to \a to and erases it; returns whether it was there.
bool take(nlohmann::json& obj, const char* key, nlohmann::json& to) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return false;
  }
  to = std::move(*it);
  obj.erase(it);
  return true;
}

/// Version 1 wrote spot_price as a number or a numeric string; null when neither.
nlohmann::json price_of(const nlohmann::json& v) {
  if (v.is_number()) {
    return v;
  }
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str()) {
      return d;
    }
  }
  return nullptr;
}

void v1_to_v2(nlohmann::json& r) {
  if (!r.contains("driver_config") || r["driver_config"].is_null()) {
    r["driver_config"] = nlohmann::json::object();
  }
  if (!r.contains("facts") || r["facts"].is_null()) {
    r["facts"] = nlohmann::json::object();
  }
  nlohmann::json& cfg = r["driver_config"];
  nlohmann::json& facts = r["facts"];
  if (!cfg.is_object() || !facts.is_object()) {
    return;  // the load reports the corrupt field
  }
  nlohmann::json v;
  nlohmann::json progress = nlohmann::json::object();
  if (take(cfg, "create_incomplete", v)) {
    progress["incomplete"] = v;
  }
  if (take(cfg, "rolled_back", v)) {
    progress["rolled_back"] = v;
  }
  nlohmann::json size = nlohmann::json::object();
  for (const char* key : {"region", "instance_type"}) {
    if (take(cfg, key, v)) {
      size[key] = v;
    }
  }
  if (take(cfg, "spot", v)) {
    size["spot"] = v.is_boolean() ? v : nlohmann::json(v == "true");
  }
  // ec2 cached DescribeInstanceTypes' answer in facts.instance_type.
  if (take(facts, "instance_type", v) && v.is_object()) {
    for (const char* key : {"vcpus", "memory_mib", "gpu_count", "gpu_memory_mib"}) {
      if (v.contains(key)) {
        size[key] = v[key];
      }
    }
    if (v.contains("gpu_name")) {
      size["gpu_model"] = v["gpu_name"];
    }
  }
  nlohmann::json provision = nlohmann::json::object();
  if (take(cfg, "provision_overrides", v)) {
    provision["overrides"] = v;
  }
  if (take(cfg, "provision_at_boot", v)) {
    provision["at_boot"] = v;
  }
  nlohmann::json cost = nlohmann::json::object();
  // Version 1 kept an autostop setting with neither limit as "off".
  if (take(cfg, "autostop", v) && v.is_object() &&
      (v.value("idle_seconds", 0L) != 0 || v.value("max_lifetime_seconds", 0L) != 0)) {
    cost["autostop"] = v;
  }
  if (take(cfg, "autostop_on_host", v)) {
    cost["agent_on_host"] = v;
  }
  if (take(cfg, "shutdown_behavior", v)) {
    cost["power_off_action"] = v;
  }
  if (take(facts, "launched_at", v)) {
    cost["launched_at"] = v;
  }
  if (take(facts, "spot_price", v)) {
    cost["spot_price"] = price_of(v);
  }
  r["progress"] = progress;
  r["size"] = size;
  r["provision"] = provision;
  r["cost"] = cost;
  r["schema_version"] = 2;
}

}  // namespace

void migrate_record(nlohmann::json& record) {
  int version = record.value("schema_version", 1);
  if (version < 2) {
    v1_to_v2(record);
  }
  // Version 3 only adds the optional cluster section: a version 2 record is one machine.
  record["schema_version"] = 3;
  static_assert(MachineRecord::k_schema_version == 3, "add the step to the new version here");
}

}  // namespace gm::store
