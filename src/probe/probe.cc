#include "probe/probe.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "gm/error.h"
#include "util/assets.h"
#include "util/crypto.h"

namespace gm::probe {
namespace {

using nlohmann::json;

constexpr std::string_view k_payload_asset = "probe/payload.py";
constexpr int k_no_python_status = 127;
// Interpreters tried in order when ProbeOptions::python is empty: RHEL-family hosts may have
// only platform-python, older images only a versioned name.
constexpr std::string_view k_pythons =
    "python3 /usr/libexec/platform-python python3.13 python3.12 python3.11 python3.10 python3.9 "
    "python3.8 python3.7 python3.6";

std::string sh_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string tail(std::string_view text, std::size_t n = 2000) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string(text.size() > n ? text.substr(text.size() - n) : text);
}

std::string str_or_empty(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <typename T>
std::optional<T> opt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return std::nullopt;
  }
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) {
      return std::nullopt;
    }
  } else {
    if (!it->is_number()) {
      return std::nullopt;
    }
  }
  return it->get<T>();
}

std::optional<CudaFailure> parse_failure(const json& j) {
  if (!j.is_object()) {
    return std::nullopt;
  }
  CudaFailure f;
  f.call = str_or_empty(j, "call");
  f.code = opt<int>(j, "code").value_or(0);
  f.name = str_or_empty(j, "name");
  f.hint = str_or_empty(j, "hint");
  f.log = str_or_empty(j, "log");
  if (f.hint.empty()) {
    f.hint = cuda_error_hint(f.code);
  }
  return f;
}

GpuReport parse_gpu(const json& g) {
  GpuReport gpu;
  gpu.index = opt<int>(g, "index").value_or(0);
  gpu.name = str_or_empty(g, "name");
  gpu.uuid = str_or_empty(g, "uuid");
  gpu.pci_bus_id = str_or_empty(g, "pci_bus_id");
  gpu.memory_total_bytes = opt<std::uint64_t>(g, "memory_total_bytes").value_or(0);
  gpu.memory_free_bytes = opt<std::uint64_t>(g, "memory_free_bytes");
  gpu.compute_capability = str_or_empty(g, "compute_capability");
  gpu.sm_count = opt<int>(g, "sm_count").value_or(0);
  if (auto ecc = g.find("ecc"); ecc != g.end() && ecc->is_object()) {
    gpu.ecc_enabled = opt<bool>(*ecc, "enabled");
    gpu.ecc_uncorrected = opt<std::uint64_t>(*ecc, "uncorrected_volatile");
  }
  gpu.temperature_c = opt<int>(g, "temperature_c");
  gpu.power_w = opt<double>(g, "power_w");
  if (auto ptx = g.find("ptx"); ptx != g.end() && ptx->is_object()) {
    gpu.ptx_target = str_or_empty(*ptx, "target");
    gpu.ptx_version = str_or_empty(*ptx, "version");
    if (auto a = ptx->find("attempts"); a != ptx->end() && a->is_array()) {
      for (const auto& at : *a) {
        PtxAttempt attempt;
        attempt.target = str_or_empty(at, "target");
        attempt.version = str_or_empty(at, "version");
        attempt.ok = opt<bool>(at, "ok").value_or(false);
        if (auto e = at.find("error"); e != at.end()) {
          attempt.error = parse_failure(*e);
        }
        gpu.ptx_attempts.push_back(std::move(attempt));
      }
    }
  }
  if (auto k = g.find("kernel"); k != g.end() && k->is_object()) {
    gpu.kernel_ok = opt<bool>(*k, "ok");
    gpu.kernel_elements = opt<std::uint64_t>(*k, "elements").value_or(0);
    gpu.kernel_mismatches = opt<std::uint64_t>(*k, "mismatches").value_or(0);
  }
  if (auto b = g.find("bandwidth"); b != g.end() && b->is_object()) {
    gpu.bandwidth_gbps = opt<double>(*b, "gbps");
  }
  if (auto f = g.find("fma"); f != g.end() && f->is_object()) {
    gpu.fp32_tflops = opt<double>(*f, "tflops");
  }
  if (auto e = g.find("error"); e != g.end()) {
    gpu.error = parse_failure(*e);
  }
  return gpu;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string gib(std::uint64_t bytes) {
  return fixed(static_cast<double>(bytes) / (1 << 30), 1);
}

// "NVIDIA H100 80GB HBM3" -> "H100 80GB HBM3"; "Tesla T4" -> "T4".
std::string short_name(std::string_view name) {
  for (std::string_view prefix : {"NVIDIA ", "Tesla "}) {
    if (name.starts_with(prefix)) {
      name.remove_prefix(prefix.size());
    }
  }
  return std::string(name);
}

// The payload's stdout may be preceded by noise from the login shell; the document is the last
// line that parses.
std::string last_json_line(const std::string& out) {
  std::istringstream in(out);
  std::string line, found;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') {
      found = line;
    }
  }
  return found.empty() ? out : found;
}

std::string env_prefix(const std::map<std::string, std::string>& env) {
  if (env.empty()) {
    return {};
  }
  std::string out = "env";
  for (const auto& [k, v] : env) {
    out += " " + sh_quote(k + "=" + v);
  }
  return out + " ";
}

ProbeReport run_on_host(ssh::RemoteShell& shell, const ProbeOptions& options) {
  const std::string path =
      options.remote_dir + "/gpumachine-probe-" + util::hex(util::random_bytes(8)) + ".py";
  shell.upload(path, util::asset(k_payload_asset), 0600);
  const std::string candidates =
      options.python.empty() ? std::string(k_pythons) : sh_quote(options.python);
  std::string script = "f=" + sh_quote(path) + "; py=; for p in " + candidates +
                       "; do if command -v \"$p\" >/dev/null 2>&1; then py=$p; break; fi; done; "
                       "if [ -z \"$py\" ]; then rm -f \"$f\"; "
                       "echo 'gpumachine-probe: no Python 3 interpreter found' >&2; exit " +
                       std::to_string(k_no_python_status) + "; fi; " + env_prefix(options.env) +
                       "\"$py\" \"$f\"; rc=$?; rm -f \"$f\"; exit $rc";
  ssh::ExecResult r = shell.run(script);
  if (r.exit_status == k_no_python_status &&
      r.err.find("no Python 3 interpreter") != std::string::npos) {
    throw Error("probe", "no Python 3 interpreter on the machine", "tried " + candidates,
                "install python3 (apt-get install -y python3-minimal, dnf install -y python3)");
  }
  if (r.exit_status != 0) {
    throw Error("probe", "the probe payload failed (exit " + std::to_string(r.exit_status) + ")",
                tail(r.err), "run it by hand: python3 payload.py, see docs/probe.md");
  }
  ProbeReport report = parse_report(last_json_line(r.out), "host");
  report.expected_gpus = options.expected_gpus;
  return report;
}

ProbeReport container_failure(std::string message, std::string hint) {
  ProbeReport report;
  report.where = "container";
  report.status = ProbeStatus::error;
  report.message = std::move(message);
  report.hint = std::move(hint);
  report.raw = {{"status", "error"}, {"message", report.message}, {"hint", report.hint}};
  return report;
}

ProbeReport run_in_container(ssh::RemoteShell& shell, const ProbeOptions& options) {
  std::string cmd = options.docker_command + " run --rm --gpus all -i";
  for (const auto& [k, v] : options.env) {
    cmd += " -e " + sh_quote(k + "=" + v);
  }
  cmd += " " + sh_quote(options.container_image) + " python3 -";
  ssh::ExecResult r = shell.run(cmd, util::asset(k_payload_asset));
  if (r.exit_status == 127) {
    return container_failure("docker is not installed: " + tail(r.err, 300),
                             "install Docker and the NVIDIA Container Toolkit (gpumachine "
                             "provision)");
  }
  if (r.exit_status != 0) {
    // 125 is docker's own failure, e.g. "could not select device driver with capabilities gpu".
    return container_failure(
        "docker run --gpus all failed (exit " + std::to_string(r.exit_status) +
            "): " + tail(r.err, 600),
        "nvidia-ctk runtime configure --runtime=docker && systemctl restart docker; the image "
        "must have python3");
  }
  try {
    ProbeReport report = parse_report(last_json_line(r.out), "container");
    report.expected_gpus = options.expected_gpus;
    return report;
  } catch (const Error& e) {
    return container_failure(std::string("container probe printed no report: ") + e.what(),
                             "the image must have python3");
  }
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) {
    s.append(width - s.size(), ' ');
  }
  return s;
}

}  // namespace

std::string_view to_string(ProbeStatus status) {
  switch (status) {
    case ProbeStatus::ok:
      return "ok";
    case ProbeStatus::no_driver:
      return "no_driver";
    case ProbeStatus::no_gpu:
      return "no_gpu";
    case ProbeStatus::error:
      return "error";
  }
  return "error";
}

std::string cuda_error_hint(int code) {
  switch (code) {
    case 2:
      return "not enough free GPU memory: another process holds it (see nvidia-smi)";
    case 100:
      return "the driver sees no NVIDIA GPU: check `lspci -d 10de:` and CUDA_VISIBLE_DEVICES";
    case 218:
      return "the driver's JIT rejected the PTX: see the JIT log";
    case 221:
      return "the PTX JIT compiler library (libnvidia-ptxjitcompiler.so.1) is missing: install "
             "the driver's compute userspace (libnvidia-compute / nvidia-driver-cuda)";
    case 222:
      return "the PTX is newer than this driver's JIT supports: update the NVIDIA driver";
    case 700:
    case 719:
      return "the kernel failed on the GPU: look at `dmesg` for Xid errors";
    case 802:
      return "Fabric Manager is not running (NVSwitch host): systemctl enable --now "
             "nvidia-fabricmanager (its version must match the driver)";
    case 803:
      return "the loaded kernel module and the userspace driver differ (driver/library version "
             "mismatch): reboot the machine";
    case 999:
      return "unknown driver error: look at `dmesg` (grep -iE 'NVRM|Xid')";
    default:
      return {};
  }
}

ProbeReport parse_report(std::string_view json_text, std::string where) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("status")) {
    throw Error("probe", "the probe payload did not print its JSON report", tail(json_text, 300));
  }
  ProbeReport report;
  report.where = std::move(where);
  const std::string status = str_or_empty(doc, "status");
  if (status == "ok") {
    report.status = ProbeStatus::ok;
  } else if (status == "no_driver") {
    report.status = ProbeStatus::no_driver;
  } else if (status == "no_gpu") {
    report.status = ProbeStatus::no_gpu;
  } else {
    report.status = ProbeStatus::error;
  }
  report.message = str_or_empty(doc, "message");
  report.hint = str_or_empty(doc, "hint");
  if (auto e = doc.find("error"); e != doc.end()) {
    report.error = parse_failure(*e);
  }
  if (auto h = doc.find("host"); h != doc.end() && h->is_object()) {
    report.host.hostname = str_or_empty(*h, "hostname");
    report.host.arch = str_or_empty(*h, "arch");
    report.host.driver_version = str_or_empty(*h, "driver_version");
    report.host.cuda_driver_version = opt<int>(*h, "cuda_driver_version");
    report.host.cuda_driver_version_text = str_or_empty(*h, "cuda_driver_version_text");
    report.host.nvml = opt<bool>(*h, "nvml").value_or(false);
    report.host.in_container = opt<bool>(*h, "in_container").value_or(false);
    if (auto t = h->find("ptx_targets"); t != h->end() && t->is_array()) {
      for (const auto& s : *t) {
        if (s.is_string()) {
          report.host.ptx_targets.push_back(s.get<std::string>());
        }
      }
    }
  }
  if (auto g = doc.find("gpus"); g != doc.end() && g->is_array()) {
    for (const auto& gpu : *g) {
      report.gpus.push_back(parse_gpu(gpu));
    }
  }
  report.raw = std::move(doc);
  return report;
}

ProbeResult run_probe(ssh::RemoteShell& shell, const ProbeOptions& options) {
  ProbeResult result{run_on_host(shell, options), std::nullopt};
  if (options.container) {
    result.container = run_in_container(shell, options);
  }
  return result;
}

const std::vector<GpuSpec>& gpu_specs() {
  // Vendor datasheet figures (memory bandwidth, dense FP32 without sparsity). More specific
  // entries come first: "T4G" before "T4", "L40S"/"L40" before "L4", "A100 80GB" before "A100".
  static const std::vector<GpuSpec> table = {
      {"T4G", {"T4G", ""}, 320, 8.1},
      {"T4", {"T4", ""}, 320, 8.1},
      {"A10G", {"A10G", ""}, 600, 31.2},
      {"L40S", {"L40S", ""}, 864, 91.6},
      {"L40", {"L40", ""}, 864, 90.5},
      {"L4", {"L4", ""}, 300, 30.3},
      {"V100", {"V100", ""}, 900, 15.7},
      {"A100 80GB", {"A100", "80GB"}, 2039, 19.5},
      {"A100 40GB", {"A100", ""}, 1555, 19.5},
      {"H100 PCIe", {"H100", "PCIE"}, 2000, 51.2},
      {"H100 NVL", {"H100", "NVL"}, 3900, 60.0},
      {"H100 SXM", {"H100", ""}, 3350, 67.0},
      {"H200", {"H200", ""}, 4800, 67.0},
      {"B200", {"B200", ""}, 8000, 75.0},
  };
  return table;
}

const GpuSpec* find_spec(std::string_view gpu_name) {
  const std::string name = upper(gpu_name);
  for (const GpuSpec& spec : gpu_specs()) {
    bool all = true;
    for (std::string_view needle : spec.match) {
      if (!needle.empty() && name.find(upper(needle)) == std::string::npos) {
        all = false;
      }
    }
    if (all) {
      return &spec;
    }
  }
  return nullptr;
}

std::vector<std::string> gpu_problems(const GpuReport& gpu) {
  std::vector<std::string> problems;
  if (gpu.error) {
    std::string p = gpu.error->call + " failed: " + gpu.error->name + " (" +
                    std::to_string(gpu.error->code) + ")";
    if (!gpu.error->hint.empty()) {
      p += ": " + gpu.error->hint;
    }
    problems.push_back(std::move(p));
  }
  if (gpu.kernel_ok && !*gpu.kernel_ok) {
    problems.push_back("correctness kernel wrong: " + std::to_string(gpu.kernel_mismatches) +
                       " of " + std::to_string(gpu.kernel_elements) + " elements differ");
  } else if (!gpu.kernel_ok && !gpu.error) {
    problems.push_back("correctness kernel did not run");
  }
  if (gpu.ecc_uncorrected && *gpu.ecc_uncorrected > 0) {
    problems.push_back(std::to_string(*gpu.ecc_uncorrected) +
                       " uncorrected ECC errors since the driver loaded: the GPU needs service "
                       "(nvidia-smi -q -d ECC)");
  }
  if (const GpuSpec* spec = find_spec(gpu.name); spec && gpu.bandwidth_gbps) {
    if (*gpu.bandwidth_gbps < spec->bandwidth_gbps / 2) {
      problems.push_back("memory bandwidth " + fixed(*gpu.bandwidth_gbps, 0) +
                         " GB/s is under half of the " + std::string(spec->model) + "'s " +
                         fixed(spec->bandwidth_gbps, 0) + " GB/s");
    }
  }
  return problems;
}

std::vector<std::string> report_problems(const ProbeReport& report) {
  std::vector<std::string> problems;
  const std::string where = report.where + ": ";
  if (report.status != ProbeStatus::ok) {
    std::string p =
        where + (report.message.empty() ? std::string(to_string(report.status)) : report.message);
    if (!report.hint.empty()) {
      p += " (" + report.hint + ")";
    }
    problems.push_back(std::move(p));
    return problems;
  }
  if (report.expected_gpus && static_cast<int>(report.gpus.size()) < *report.expected_gpus) {
    problems.push_back(where + "expected " + std::to_string(*report.expected_gpus) +
                       " GPUs, found " + std::to_string(report.gpus.size()));
  }
  for (const GpuReport& gpu : report.gpus) {
    for (const std::string& p : gpu_problems(gpu)) {
      problems.push_back(where + "GPU " + std::to_string(gpu.index) + ": " + p);
    }
  }
  return problems;
}

int verdict_exit_code(const ProbeReport& report) {
  if (report.status == ProbeStatus::no_driver || report.status == ProbeStatus::no_gpu) {
    return exit_code::k_no_gpu;
  }
  return report_problems(report).empty() ? exit_code::k_ok : exit_code::k_failure;
}

int verdict_exit_code(const ProbeResult& result) {
  const int host = verdict_exit_code(result.host);
  if (host == exit_code::k_no_gpu || !result.container) {
    return host;
  }
  // The host has GPUs, so a container without them means the toolkit path is broken.
  const int container = verdict_exit_code(*result.container);
  return host == exit_code::k_ok && container == exit_code::k_ok ? exit_code::k_ok
                                                                 : exit_code::k_failure;
}

json to_json(const ProbeReport& report) {
  json doc = report.raw.is_object() ? report.raw : json::object();
  doc["where"] = report.where;
  if (doc.contains("gpus") && doc["gpus"].is_array()) {
    for (std::size_t i = 0; i < doc["gpus"].size() && i < report.gpus.size(); ++i) {
      const GpuReport& gpu = report.gpus[i];
      auto problems = gpu_problems(gpu);
      json v = {{"healthy", problems.empty()}, {"problems", problems}, {"spec", nullptr}};
      if (const GpuSpec* spec = find_spec(gpu.name)) {
        v["spec"] = {{"model", spec->model},
                     {"bandwidth_gbps", spec->bandwidth_gbps},
                     {"fp32_tflops", spec->fp32_tflops}};
      }
      doc["gpus"][i]["verdict"] = std::move(v);
    }
  }
  const auto problems = report_problems(report);
  doc["verdict"] = {
      {"exit_code", verdict_exit_code(report)},
      {"healthy", verdict_exit_code(report) == exit_code::k_ok},
      {"expected_gpus", report.expected_gpus ? json(*report.expected_gpus) : json(nullptr)},
      {"problems", problems},
      {"summary", gpu_summary(report)}};
  return doc;
}

json to_json(const ProbeResult& result) {
  return {{"host", to_json(result.host)},
          {"container", result.container ? to_json(*result.container) : json(nullptr)},
          {"exit_code", verdict_exit_code(result)}};
}

std::string render_table(const ProbeReport& report) {
  std::ostringstream out;
  const std::string where = report.where == "host" ? "" : "[" + report.where + "] ";
  if (report.status != ProbeStatus::ok) {
    out << where
        << (report.message.empty() ? std::string(to_string(report.status)) : report.message)
        << "\n";
    if (!report.hint.empty()) {
      out << where << "hint: " << report.hint << "\n";
    }
  } else {
    const std::vector<std::string> header = {"GPU",       "NAME", "CC",     "SMS", "MEMORY",
                                             "ECC",       "TEMP", "POWER",  "PTX", "KERNEL",
                                             "BANDWIDTH", "FP32", "VERDICT"};
    std::vector<std::vector<std::string>> rows = {header};
    for (const GpuReport& g : report.gpus) {
      std::string mem = g.memory_free_bytes
                            ? gib(*g.memory_free_bytes) + "/" + gib(g.memory_total_bytes) + " GiB"
                            : gib(g.memory_total_bytes) + " GiB";
      std::string ecc = !g.ecc_enabled ? "-" : (*g.ecc_enabled ? "on" : "off");
      if (g.ecc_uncorrected) {
        ecc += "/" + std::to_string(*g.ecc_uncorrected);
      }
      std::string bw = "-";
      if (g.bandwidth_gbps) {
        bw = fixed(*g.bandwidth_gbps, 0) + " GB/s";
        if (const GpuSpec* spec = find_spec(g.name)) {
          bw += " (" + fixed(100.0 * *g.bandwidth_gbps / spec->bandwidth_gbps, 0) + "%)";
        }
      }
      std::string kernel = !g.kernel_ok ? "-" : (*g.kernel_ok ? "ok" : "WRONG");
      rows.push_back({std::to_string(g.index), g.name, g.compute_capability,
                      std::to_string(g.sm_count), mem, ecc,
                      g.temperature_c ? std::to_string(*g.temperature_c) + "C" : "-",
                      g.power_w ? fixed(*g.power_w, 0) + "W" : "-",
                      g.ptx_target.empty() ? "none" : g.ptx_target, kernel, bw,
                      g.fp32_tflops ? fixed(*g.fp32_tflops, 1) + " TFLOP/s" : "-",
                      gpu_problems(g).empty() ? "ok" : "FAILED"});
    }
    std::vector<std::size_t> widths(header.size(), 0);
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        widths[i] = std::max(widths[i], row[i].size());
      }
    }
    for (const auto& row : rows) {
      std::string line = where;
      for (std::size_t i = 0; i < row.size(); ++i) {
        line += i + 1 < row.size() ? pad(row[i], widths[i] + 2) : row[i];
      }
      out << line << "\n";
    }
  }
  const HostReport& h = report.host;
  out << where << "host " << (h.hostname.empty() ? "?" : h.hostname) << " ("
      << (h.arch.empty() ? "?" : h.arch) << "): driver "
      << (h.driver_version.empty() ? "unknown" : h.driver_version);
  if (h.cuda_driver_version) {
    out << ", CUDA driver API " << h.cuda_driver_version_text << " (" << *h.cuda_driver_version
        << ")";
  }
  if (!h.ptx_targets.empty()) {
    out << ", PTX JIT ok for";
    for (const auto& t : h.ptx_targets) {
      out << " " << t;
    }
  }
  out << (h.nvml ? "" : ", no NVML") << "\n";
  for (const GpuReport& g : report.gpus) {
    for (const PtxAttempt& a : g.ptx_attempts) {
      if (!a.ok && a.error) {
        out << where << "GPU " << g.index << ": JIT of " << a.target << " (PTX " << a.version
            << ") failed: " << a.error->name << " (" << a.error->code << ")";
        if (!a.error->log.empty()) {
          out << "\n" << a.error->log;
        }
        out << "\n";
      }
    }
  }
  for (const std::string& p : report_problems(report)) {
    if (report.status == ProbeStatus::ok) {
      out << "problem: " << p << "\n";
    }
  }
  return out.str();
}

std::string render_table(const ProbeResult& result) {
  std::string out = render_table(result.host);
  if (result.container) {
    out += render_table(*result.container);
  }
  return out;
}

std::string gpu_summary(const ProbeReport& report) {
  switch (report.status) {
    case ProbeStatus::no_driver:
      return "no driver";
    case ProbeStatus::no_gpu:
      return "no GPU";
    case ProbeStatus::error:
      return report.error ? "error " + std::to_string(report.error->code) : "error";
    case ProbeStatus::ok:
      break;
  }
  // Group by model in first-seen order: "8x H100 80GB HBM3" or "1x T4, 1x A10G".
  std::vector<std::pair<std::string, int>> models;
  int failed = 0;
  for (const GpuReport& g : report.gpus) {
    const std::string name = short_name(g.name);
    auto it =
        std::find_if(models.begin(), models.end(), [&](const auto& m) { return m.first == name; });
    if (it == models.end()) {
      models.emplace_back(name, 1);
    } else {
      ++it->second;
    }
    failed += gpu_problems(g).empty() ? 0 : 1;
  }
  std::string out;
  for (const auto& [name, n] : models) {
    out += (out.empty() ? "" : ", ") + std::to_string(n) + "x " + name;
  }
  if (out.empty()) {
    out = "0 GPUs";
  }
  const bool short_count =
      report.expected_gpus && static_cast<int>(report.gpus.size()) < *report.expected_gpus;
  if (failed > 0) {
    out += " " + std::to_string(failed) + " failed";
  } else if (short_count) {
    out += " (expected " + std::to_string(*report.expected_gpus) + ")";
  } else {
    out += " ok";
  }
  return out;
}

}  // namespace gm::probe
