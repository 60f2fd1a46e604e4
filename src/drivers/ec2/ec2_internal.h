// The ec2 driver's own header, shared by its files: ec2_config (flags and offline validation),
// ec2_images (the image and instance type checks before anything is made), ec2_create (the create
// pipeline), ec2_cluster (a cluster's placement group, nodes and power), ec2_power (state and
// power verbs, the firewall), ec2_remove (rm, and gc's orphan scan
// and deletion), ec2_list (the registry row and the batched ls). Nothing outside
// src/drivers/ec2/ includes it.
#pragma once

#include "aws/query.h"
#include "drivers/caller_address.h"
#include "drivers/ec2/ec2_api.h"
#include "drivers/ec2/ec2_config.h"
#include "drivers/ec2/ec2_driver.h"
#include "gm/error.h"

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gm::drivers::ec2 {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::chrono::minutes k_state_deadline{10};
constexpr std::chrono::minutes k_ssh_deadline{5};
constexpr std::chrono::minutes k_sg_delete_deadline{5};
// State polls: starting small (a quick change is seen at once), then every half second (create's
// overhead), slowing down on long waits and under throttling.
constexpr milliseconds k_poll_first{100};
constexpr milliseconds k_poll_fast{500};
constexpr milliseconds k_poll_slow{2000};
constexpr std::chrono::seconds k_poll_slow_after{60};
constexpr milliseconds k_poll_throttled_max{15000};
constexpr milliseconds k_ssh_retry_first{20};  // after a failed login, doubling up to k_ssh_retry
constexpr milliseconds k_ssh_retry{250};
constexpr const char* k_default_type = "g4dn.xlarge";
constexpr int k_default_root_gib = 100;

/// \a parts joined with \a sep.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

/// The last value of a flag, or \a fallback.
std::string single(const Options& options, const std::string& name, std::string fallback = {});

/// Every value of a repeatable flag.
std::vector<std::string> all(const Options& options, const std::string& name);

/// "machine 'NAME'", the subject of the driver's errors.
std::string subject_of(const MachineRecord& record);

/// The tags on everything the machine owns (Name, gpumachine:*, --ec2-tag).
Tags machine_tags(const MachineRecord& record, const Ec2Config& cfg);

/// "gpumachine-NAME-<id prefix>": the key pair's and the security group's name.
std::string resource_name(const MachineRecord& record);

/// The live (not deleted) ledger entry of \a kind, or nullptr.
Resource* ledger(MachineRecord& record, std::string_view kind);

/// Sets (or adds) the ledger entry of \a kind.
void set_ledger(MachineRecord& record, const std::string& kind, const std::string& id,
                const std::string& status);

/// Sleeps \a d unless interrupted first.
void pause(DriverHost& host, milliseconds d);

/// The id of the security group called \a name that carries this machine's id tag; empty when
/// there is none (or it belongs to someone else).
std::string own_security_group(Ec2Api& api, const MachineRecord& record, const std::string& name);

/// How long after a create call EC2 may still answer "not found" for what it made (eventual
/// consistency: seconds, at times minutes). GPUMACHINE_EC2_CONSISTENCY_WINDOW (seconds)
/// overrides it for emulators and tests.
std::chrono::seconds consistency_window();

/// True while EC2 may still hide what a create call sent at \a stamp (RFC 3339) made; an
/// absent stamp (older records) counts from the machine's creation.
bool maybe_invisible(const MachineRecord& record, const std::string& stamp);

/// A throttling answer (RequestLimitExceeded, Throttling).
bool is_throttling(const CloudError& e);

/// Polls the instance until its state is one of \a targets. Missing from the answer means
/// "not visible yet" (eventual consistency) unless \a missing_is_gone. Throws when it lands in
/// one of \a failures or the deadline passes.
std::optional<Instance> wait_for_state(Ec2Api& api, const MachineRecord& record,
                                       const std::string& id,
                                       const std::vector<std::string>& targets,
                                       const std::vector<std::string>& failures,
                                       bool missing_is_gone, DriverHost& host);

/// Authorize/RevokeSecurityGroupIngress parameters for the machine's rules (SSH and every
/// --ec2-open-port) from \a cidr.
aws::QueryParams ingress_rules(const Ec2Config& cfg, const std::string& group_id,
                               const std::string& cidr);

/// StopInstances of \a ids (Force: \a force); when one is still pending (IncorrectInstanceState),
/// waits until each runs or is stopped, then asks again. Used by stop and kill, of one machine or
/// a cluster's nodes.
void stop_instances(Ec2Api& api, const MachineRecord& record, const std::vector<std::string>& ids,
                    bool force, DriverHost& host);

/// A one-time spot instance cannot stop (EC2 answers InvalidParameterCombination at launch and
/// on ModifyInstanceAttribute): refuse before any call, with the ways out.
void check_shutdown_behavior(const MachineRecord& record, std::string_view behavior);

/// A failure to reach sshd at all (versus auth or the host key).
bool is_connection_level(const SshError& e);

/// Connects until SSH answers with the pinned host key (never trusting whatever answers).
void wait_for_ssh(const MachineRecord& record, DriverHost& host);

/// Terminates \a ids (not found counts as done), then waits until each is terminated or gone,
/// calling \a gone with each as it goes. Used by rm (and so create's rollback) and gc.
void terminate_and_wait(Ec2Api& api, const MachineRecord& record,
                        const std::vector<std::string>& ids, DriverHost& host,
                        const std::function<void(const std::string& id)>& gone);

/// Deletes security group \a group_id, retrying with backoff (up to k_sg_delete_deadline) while
/// an instance still uses it (DependencyViolation) and, while \a may_be_invisible() says EC2 may
/// not show it yet, while it is "not found"; \a between runs before each retry. Returns false
/// when it was already gone. Used by rm (and so create's rollback) and gc.
bool delete_security_group(Ec2Api& api, const std::string& group_id, DriverHost& host,
                           const std::function<bool()>& may_be_invisible,
                           const std::function<void()>& between);

/// The subnet a cluster's EFA interface is made in: --ec2-subnet-id, the VPC's subnet in
/// \a zone, else the zone's default subnet (empty: none found).
std::string cluster_subnet(Ec2Api& api, const Ec2Config& cfg, const std::string& zone);

/// A cluster's nodes' states and addresses from \a found (instance id -> instance; missing:
/// terminated), and the cluster's state and node 0's address in the record (state, ls).
void record_nodes(MachineRecord& record, const std::map<std::string, Instance>& found);

class Ec2Driver final : public Driver {
 public:
  std::string_view name() const override { return "ec2"; }
  Capabilities capabilities() const override {
    return {.power = true,
            .reboot = true,
            .stop_saves_compute = true,
            .spot = true,
            .placement_groups = true,
            .firewall = FirewallModel::per_machine_source_cidr,
            .power_off_action = true};
  }

  void configure(const Options& options, MachineRecord& record) override;
  void create(MachineRecord& record, DriverHost& host) override;
  MachineState state(MachineRecord& record, DriverHost& host) override;
  void start(MachineRecord& record, DriverHost& host) override;
  void stop(MachineRecord& record, DriverHost& host) override { power_off(record, host, false); }
  void kill(MachineRecord& record, DriverHost& host) override { power_off(record, host, true); }
  void restart(MachineRecord& record, DriverHost& host) override;
  std::vector<std::string> remove(MachineRecord& record, DriverHost& host) override;
  void set_power_off_action(MachineRecord& record, DriverHost& host,
                            std::string_view behavior) override;
  std::pair<std::string, std::string> allow_ssh_from(MachineRecord& record, DriverHost& host,
                                                     const std::string& cidr) override;
  std::optional<PriceQuote> quote(const MachineRecord& record,
                                  const std::filesystem::path& home) override;
  std::string explain_unreachable(const MachineRecord& record) override;

 private:
  void preflight(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void ensure_local_keys(MachineRecord& record, DriverHost& host);
  void import_key_pair(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void ensure_security_group(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void launch(Ec2Api& api, MachineRecord& record, DriverHost& host);
  aws::QueryParams run_params(const MachineRecord& record, const std::string& zone,
                              const std::string& subnet, const std::string& token);
  std::vector<Instance> find_instances(Ec2Api& api, const MachineRecord& record);
  void adopt(MachineRecord& record, const Instance& instance, DriverHost& host);
  void record_address(MachineRecord& record, const Instance& instance);
  void power_off(MachineRecord& record, DriverHost& host, bool force);
  void await_pending_launch(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void rollback(Ec2Api& api, MachineRecord& record, DriverHost& host);
  /// What a launch (or a lookup of it) found: the machine's instance, or a cluster's nodes.
  void adopt_launch(MachineRecord& record, const std::vector<Instance>& found, DriverHost& host);

  // Clusters (ec2_cluster.cc): record.cluster is set.
  void ensure_placement_group(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void allow_cluster_traffic(Ec2Api& api, const std::string& group_id, DriverHost& host);
  /// The instances of the cluster's one RunInstances as its nodes, ranked by launch index (all N,
  /// or as many as EC2 shows yet: await_nodes() looks again).
  void adopt_nodes(MachineRecord& record, std::vector<Instance> instances, DriverHost& host);
  /// Waits until every node runs, records their addresses, then (wait target ssh) until SSH
  /// answers on each with the pinned key.
  void await_nodes(Ec2Api& api, MachineRecord& record, DriverHost& host);
  MachineState cluster_state(MachineRecord& record);
  void cluster_start(MachineRecord& record, DriverHost& host);
  void cluster_power_off(MachineRecord& record, DriverHost& host, bool force);
  /// Throws UnsupportedError for a cluster: \a what acts on one machine only.
  static void refuse_for_cluster(const MachineRecord& record, std::string_view what);
  const std::string& instance_id() const { return m_cfg.instance_id; }

  /// Binds m_cfg to the record for one public operation: read from record.driver_config on entry
  /// to the outermost one, written back on its exit (also when it throws).
  class Bound {
   public:
    Bound(Ec2Driver& driver, MachineRecord& record) : m_driver(driver), m_record(record) {
      if (m_driver.m_depth++ == 0) {
        m_driver.m_cfg = record.driver_config.get<Ec2Config>();
      }
    }
    ~Bound() {
      if (--m_driver.m_depth == 0) {
        m_record.driver_config = m_driver.m_cfg;
      }
    }
    Bound(const Bound&) = delete;
    Bound& operator=(const Bound&) = delete;

   private:
    Ec2Driver& m_driver;
    MachineRecord& m_record;
  };
  /// Writes m_cfg into the record, then saves it.
  void save(MachineRecord& record, DriverHost& host) {
    record.driver_config = m_cfg;
    host.save(record);
  }

  Ec2Config m_cfg;    ///< The machine's config while an operation runs (Bound).
  int m_depth = 0;    ///< Nesting of Bound (create's rollback runs remove).
  BootScript m_boot;  ///< From the machine layer, for the user data (ensure_local_keys()).
};

}  // namespace gm::drivers::ec2
