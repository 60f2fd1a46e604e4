// Defaults for the optional driver operations, and the registry of drivers.
#include "gm/driver.h"

#include "gm/error.h"
#include "util/spellcheck.h"

namespace gm {

namespace {
[[noreturn]] void unsupported(const Driver& driver, const MachineRecord& record,
                              std::string_view verb) {
  throw UnsupportedError(
      "machine '" + record.name + "'",
      "the " + std::string(driver.name()) + " driver cannot " + std::string(verb) + " the host",
      "power the host on or off outside gpumachine; `gpumachine restart " + record.name +
          "` reboots it over SSH where the driver allows");
}
}  // namespace

void Driver::start(MachineRecord& record, DriverHost&) {
  unsupported(*this, record, "start");
}
void Driver::stop(MachineRecord& record, DriverHost&) {
  unsupported(*this, record, "stop");
}
void Driver::kill(MachineRecord& record, DriverHost&) {
  unsupported(*this, record, "kill");
}
void Driver::restart(MachineRecord& record, DriverHost&) {
  unsupported(*this, record, "restart");
}

void Driver::set_power_off_action(MachineRecord& record, DriverHost&, std::string_view) {
  throw UnsupportedError(
      "machine '" + record.name + "'",
      "the " + std::string(name()) + " driver cannot choose what the host's power-off becomes",
      "the host only powers off; use --action stop");
}

std::pair<std::string, std::string> Driver::allow_ssh_from(MachineRecord& record, DriverHost&,
                                                           const std::string&) {
  throw UnsupportedError("machine '" + record.name + "'",
                         "the " + std::string(name()) + " driver keeps no firewall for the host",
                         "change the host's own firewall, if it has one");
}

std::string Driver::explain_unreachable(const MachineRecord&) {
  return {};
}

std::optional<PriceQuote> Driver::quote(const MachineRecord&, const std::filesystem::path&) {
  return std::nullopt;
}

const DriverInfo& default_driver() {
  for (const DriverInfo& info : driver_registry()) {
    if (info.is_default) {
      return info;
    }
  }
  return driver_registry().front();
}

const DriverInfo& find_driver(std::string_view name) {
  std::vector<std::string> names;
  for (const DriverInfo& info : driver_registry()) {
    if (info.name == name) {
      return info;
    }
    for (const std::string& alias : info.aliases) {
      if (alias == name) {
        return info;
      }
    }
    names.push_back(info.name);
  }
  throw UsageError(
      "--driver " + std::string(name), "unknown driver" + util::did_you_mean(name, names),
      "available drivers: " + [&] {
        std::string s;
        for (const std::string& n : names) {
          s += (s.empty() ? "" : ", ") + n;
        }
        return s;
      }());
}

}  // namespace gm
