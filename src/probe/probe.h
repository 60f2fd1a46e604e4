// The GPU probe: runs the embedded payload (probe/payload.py) on a machine through a RemoteShell,
// on the host and optionally inside a container, parses the JSON it prints, and judges it.
// The payload needs only python3 and the NVIDIA driver on the machine (docs/probe.md).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssh/remote_shell.h"

namespace gm::probe {

/// What the payload could do on the machine as a whole.
enum class ProbeStatus {
  ok,         ///< the driver answered and every GPU was probed (each may still have failed)
  no_driver,  ///< libcuda.so.1 cannot be loaded: no NVIDIA driver
  no_gpu,     ///< cuInit said NO_DEVICE (100) or the driver sees 0 devices
  error,      ///< the driver failed before any GPU could be probed (e.g. 802, 803, 999)
};

/// A failed CUDA driver call, with the payload's diagnosis.
struct CudaFailure {
  std::string call;  ///< e.g. "cuInit", "cuModuleLoadDataEx"
  int code = 0;      ///< CUresult
  std::string name;  ///< e.g. "CUDA_ERROR_SYSTEM_NOT_READY"
  std::string hint;  ///< what to do about it (may be empty)
  std::string log;   ///< the JIT error log for cuModuleLoadDataEx
};

/// One try at JIT-compiling the probe's PTX.
struct PtxAttempt {
  std::string target;   ///< e.g. "sm_90"
  std::string version;  ///< PTX ISA, e.g. "7.8"
  bool ok = false;
  std::optional<CudaFailure> error;
};

/// Everything the payload reported about one GPU.
struct GpuReport {
  int index = 0;
  std::string name;
  std::string uuid;
  std::string pci_bus_id;
  std::uint64_t memory_total_bytes = 0;
  std::optional<std::uint64_t> memory_free_bytes;
  std::string compute_capability;  ///< "9.0"
  int sm_count = 0;
  std::optional<bool> ecc_enabled;
  std::optional<std::uint64_t> ecc_uncorrected;  ///< volatile uncorrected ECC errors (NVML)
  std::optional<int> temperature_c;
  std::optional<double> power_w;
  std::string ptx_target;   ///< the target that JIT-compiled; empty when none did
  std::string ptx_version;  ///< its .version
  std::vector<PtxAttempt> ptx_attempts;
  std::optional<bool> kernel_ok;  ///< correctness kernel result; unset when it did not run
  std::uint64_t kernel_elements = 0;
  std::uint64_t kernel_mismatches = 0;
  std::optional<double> bandwidth_gbps;  ///< device memory copy, bytes read + written per second
  std::optional<double> fp32_tflops;     ///< FMA throughput
  std::optional<CudaFailure> error;      ///< the CUDA call that stopped this GPU's probe
};

/// Per-host facts.
struct HostReport {
  std::string hostname;
  std::string arch;
  std::string driver_version;              ///< "595.91.07" (NVML or /proc); empty when unknown
  std::optional<int> cuda_driver_version;  ///< cuDriverGetVersion, e.g. 13000
  std::string cuda_driver_version_text;    ///< "13.0"
  bool nvml = false;
  bool in_container = false;
  std::vector<std::string> ptx_targets;  ///< targets that JIT-compiled on some GPU
};

/// One run of the payload, parsed.
struct ProbeReport {
  std::string where = "host";  ///< "host" or "container"
  ProbeStatus status = ProbeStatus::error;
  std::string message;  ///< why status is not ok (human text)
  std::string hint;
  std::optional<CudaFailure> error;
  HostReport host;
  std::vector<GpuReport> gpus;
  std::optional<int> expected_gpus;  ///< from ProbeOptions; a shortfall fails the verdict
  nlohmann::json raw;                ///< the payload's document as printed
};

/// The host report and, in container mode, the container report.
struct ProbeResult {
  ProbeReport host;
  std::optional<ProbeReport> container;
};

struct ProbeOptions {
  /// GPUs the instance type should have; fewer found fails the verdict. Unset: no expectation.
  std::optional<int> expected_gpus;
  /// Also run the payload in `docker run --rm --gpus all -i IMAGE python3 -`.
  bool container = false;
  /// An image with python3; the NVIDIA Container Toolkit injects the driver libraries.
  std::string container_image = "python:3.12-slim";
  /// How to call docker on the machine (e.g. "sudo docker").
  std::string docker_command = "docker";
  /// The interpreter to run the payload with; empty: the first of python3,
  /// /usr/libexec/platform-python, python3.N found on the machine.
  std::string python;
  /// Extra environment for the payload (tests point GM_PROBE_LIBCUDA at a fake driver).
  std::map<std::string, std::string> env;
  /// Where the payload is uploaded (as gpumachine-probe-<random>.py, removed afterwards).
  std::string remote_dir = "/tmp";
};

/// Runs the probe through shell: uploads the payload, runs it on the host (and in a container
/// when asked) and parses the reports. Throws gm::Error when no Python 3 is found or the payload
/// does not produce its JSON document; SshError from the shell propagates.
ProbeResult run_probe(ssh::RemoteShell& shell, const ProbeOptions& options);

/// Parses the payload's JSON document. Throws gm::Error when it is not one.
ProbeReport parse_report(std::string_view json_text, std::string where = "host");

/// Published specification of a GPU model, for the bandwidth verdict.
struct GpuSpec {
  std::string_view model;                 ///< e.g. "H100 SXM"
  std::array<std::string_view, 2> match;  ///< substrings that must all occur in the name
  double bandwidth_gbps = 0;              ///< memory bandwidth, GB/s
  double fp32_tflops = 0;                 ///< dense FP32, TFLOP/s
};

/// The spec table (most specific entries first).
const std::vector<GpuSpec>& gpu_specs();

/// The spec whose substrings all occur in the device name (case-insensitive), or nullptr.
const GpuSpec* find_spec(std::string_view gpu_name);

/// Why this GPU fails the verdict; empty when healthy. A failure is a CUDA error, a wrong kernel
/// result, uncorrected ECC errors, or bandwidth under half the model's specification.
std::vector<std::string> gpu_problems(const GpuReport& gpu);

/// Host-level problems plus every GPU's, each prefixed with where it happened.
std::vector<std::string> report_problems(const ProbeReport& report);

/// 0 healthy, 1 a GPU (or the driver) failed, exit_code::k_no_gpu for no driver / no GPU.
int verdict_exit_code(const ProbeReport& report);
/// The worse of both reports; a container that sees no GPU while the host does is a failure.
int verdict_exit_code(const ProbeResult& result);

/// The hint for a CUresult (same table as the payload's), empty when there is none.
std::string cuda_error_hint(int code);

/// The payload's document plus the verdict ("verdict": {exit_code, healthy, problems}) and
/// per-GPU verdicts, for --json output.
nlohmann::json to_json(const ProbeReport& report);
/// {"host": ..., "container": ... or null, "exit_code": N}.
nlohmann::json to_json(const ProbeResult& result);

/// A table for humans: one row per GPU, a host line, then problems and JIT logs.
std::string render_table(const ProbeReport& report);
/// Both reports' tables.
std::string render_table(const ProbeResult& result);

/// A one-cell summary for `ls`, e.g. "1x T4 ok", "8x H100 80GB HBM3 1 failed", "no GPU".
std::string gpu_summary(const ProbeReport& report);

/// "no_driver" etc., as in the payload's JSON.
std::string_view to_string(ProbeStatus status);

}  // namespace gm::probe
