#include "cli/probe_cluster.h"

#include "cli/output.h"
#include "cluster/fanout.h"
#include "gm/error.h"
#include "machine/cluster_nodes.h"
#include "machine/connect.h"
#include "util/assets.h"
#include "util/log.h"
#include "util/shell.h"

#include <cstdio>
#include <mutex>

namespace gm::cli {

namespace {

constexpr std::string_view k_marker = "GM_CLUSTER_PROBE ";

}  // namespace

int probe_cluster(Context& ctx, const ClusterProbeOptions& o) {
  MachineRecord record = machine::load_for_ssh(ctx.store(), o.name, "probe");
  if (!record.cluster) {
    throw UsageError("--cluster", "machine '" + o.name + "' is not a cluster",
                     "`gpumachine probe " + o.name + "` probes one machine");
  }
  cluster::FanoutOptions options;
  options.command = util::shell_quote(o.python) + " -c " +
                    util::shell_quote(util::asset("cluster/allreduce_probe.py"));
  options.master_port = o.master_port;
  std::mutex mutex;
  std::string report;
  options.on_line = [&](cluster::Stream stream, std::string_view line) {
    std::string_view rest = line.substr(line.find("] ") + 2);
    if (rest.starts_with(k_marker)) {
      std::lock_guard guard(mutex);
      report = std::string(rest.substr(k_marker.size()));
      return;
    }
    util::debug(std::string(line.substr(0, line.size() - 1)));
    if (stream == cluster::Stream::err && !ctx.json()) {
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
  };
  util::info("all-reducing across the " + std::to_string(record.cluster->nodes.size()) +
             " nodes of '" + o.name + "'");
  cluster::FanoutResult result = cluster::fanout(machine::fanout_nodes(record), options);
  if (report.empty()) {
    throw Error("machine '" + o.name + "'", "the cluster probe did not finish",
                "rank " + std::to_string(result.failed_rank.value_or(0)) + " exited with " +
                    std::to_string(result.exit_status),
                "check that " + o.python + " has torch on every node (--python names another)");
  }
  nlohmann::json doc = nlohmann::json::parse(report);
  std::string transport = doc.value("transport", "");
  bool correct = doc.value("correct", false);
  bool efa = transport.starts_with("efa");
  std::string verdict = !correct ? "FAILED: the all-reduce sum is wrong"
                        : (o.expect_efa && !efa)
                            ? "FAILED: EFA did not carry it (" + transport + "); NCCL fell back"
                            : "ok";
  doc["name"] = o.name;
  doc["verdict"] = verdict;
  if (ctx.json()) {
    ctx.out().print_json(doc);
  } else {
    char line[512];
    std::snprintf(line, sizeof line,
                  "all-reduce of %.1f MiB over %d nodes (%s): %.2f ms, bus bandwidth %.3f GB/s, "
                  "transport %s: %s",
                  doc.value("bytes", 0.0) / (1 << 20), doc.value("nodes", 0),
                  doc.value("backend", "").c_str(), doc.value("seconds", 0.0) * 1000,
                  doc.value("busbw_gbps", 0.0), transport.c_str(), verdict.c_str());
    ctx.out().print_line(line);
  }
  return verdict == "ok" && result.exit_status == 0 ? 0 : 1;
}

}  // namespace gm::cli
