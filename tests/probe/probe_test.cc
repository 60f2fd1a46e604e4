// The probe end to end: run_probe() uploads the embedded payload through a RemoteShell (here a
// LocalShell), the payload loads a fake libcuda/NVML (tests/probe/fake_cuda.c) that plants
// results and errors, and the verdict, exit codes, hints and rendering are checked.
#include "probe/probe.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "gm/error.h"
#include "probe/local_shell.h"

namespace gm::probe {
namespace {

namespace fs = std::filesystem;

ProbeOptions fake(const std::string& mode, std::map<std::string, std::string> extra = {}) {
  ProbeOptions o;
  o.env = {{"GM_PROBE_LIBCUDA", GM_FAKE_CUDA_PATH},
           {"GM_PROBE_LIBNVML", GM_FAKE_CUDA_PATH},
           {"FAKE_CUDA_MODE", mode}};
  for (auto& [k, v] : extra) {
    o.env[k] = v;
  }
  return o;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool any_contains(const std::vector<std::string>& items, const std::string& needle) {
  for (const auto& s : items) {
    if (contains(s, needle))
      return true;
  }
  return false;
}

// The path run_probe uploaded the payload to, read back from the command it ran.
std::string uploaded_path(const test::LocalShell& shell) {
  std::smatch m;
  for (const auto& c : shell.commands()) {
    if (std::regex_search(c, m, std::regex("/tmp/gpumachine-probe-[0-9a-f]+\\.py"))) {
      return m.str();
    }
  }
  return {};
}

TEST(ProbeFake, HealthyGpuPassesWithEveryField) {
  test::LocalShell shell;
  ProbeResult result = run_probe(shell, fake("ok"));
  const ProbeReport& r = result.host;
  EXPECT_FALSE(result.container);
  ASSERT_EQ(r.status, ProbeStatus::ok) << r.message;
  ASSERT_EQ(r.gpus.size(), 1u);
  const GpuReport& g = r.gpus[0];
  EXPECT_EQ(g.index, 0);
  EXPECT_EQ(g.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g.uuid, "GPU-a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf");
  EXPECT_EQ(g.pci_bus_id, "00000000:10:00.0");
  EXPECT_EQ(g.memory_total_bytes, 512u << 20);
  ASSERT_TRUE(g.memory_free_bytes);
  EXPECT_EQ(*g.memory_free_bytes, 512u << 20);
  EXPECT_EQ(g.compute_capability, "9.0");
  EXPECT_EQ(g.sm_count, 4);
  EXPECT_EQ(g.ecc_enabled, true);
  EXPECT_EQ(g.ecc_uncorrected, 0u);
  EXPECT_EQ(g.temperature_c, 41);
  EXPECT_DOUBLE_EQ(g.power_w.value_or(0), 71.2);
  EXPECT_EQ(g.ptx_target, "sm_90");
  EXPECT_EQ(g.ptx_version, "7.8");
  EXPECT_EQ(g.kernel_ok, true);
  EXPECT_GE(g.kernel_elements, 16u << 20);
  EXPECT_EQ(g.kernel_mismatches, 0u);
  EXPECT_NEAR(g.bandwidth_gbps.value_or(0), 3000, 30);  // the fake's planted 3 TB/s
  EXPECT_NEAR(g.fp32_tflops.value_or(0), 50, 1);        // and 50 TFLOP/s
  EXPECT_FALSE(g.error);
  EXPECT_EQ(r.host.driver_version, "595.91.07");
  EXPECT_EQ(r.host.cuda_driver_version, 13000);
  EXPECT_EQ(r.host.cuda_driver_version_text, "13.0");
  EXPECT_TRUE(r.host.nvml);
  EXPECT_EQ(r.host.ptx_targets, std::vector<std::string>{"sm_90"});

  EXPECT_EQ(verdict_exit_code(r), exit_code::k_ok);
  EXPECT_EQ(verdict_exit_code(result), exit_code::k_ok);
  EXPECT_TRUE(report_problems(r).empty());
  EXPECT_EQ(gpu_summary(r), "1x H100 80GB HBM3 ok");
  const std::string table = render_table(r);
  EXPECT_TRUE(contains(table, "NVIDIA H100 80GB HBM3")) << table;
  EXPECT_TRUE(contains(table, "3000 GB/s (90%)")) << table;
  EXPECT_TRUE(contains(table, "driver 595.91.07")) << table;
  EXPECT_FALSE(contains(table, "FAILED")) << table;
  auto j = to_json(result);
  EXPECT_EQ(j["exit_code"], 0);
  EXPECT_EQ(j["host"]["schema"], "gpumachine.probe/1");
  EXPECT_EQ(j["host"]["verdict"]["healthy"], true);
  EXPECT_EQ(j["host"]["gpus"][0]["verdict"]["spec"]["model"], "H100 SXM");

  // The payload went to a private temp file that is gone afterwards.
  const std::string path = uploaded_path(shell);
  ASSERT_FALSE(path.empty());
  EXPECT_FALSE(fs::exists(path));
}

TEST(ProbeFake, WrongKernelResultFails) {
  test::LocalShell shell;
  ProbeReport r = run_probe(shell, fake("wrong_result")).host;
  ASSERT_EQ(r.gpus.size(), 1u);
  EXPECT_EQ(r.gpus[0].kernel_ok, false);
  EXPECT_EQ(r.gpus[0].kernel_mismatches, 1u);
  EXPECT_EQ(r.raw["gpus"][0]["kernel"]["first_mismatch"]["index"], (1 << 23) + 7);
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
  EXPECT_TRUE(any_contains(report_problems(r), "correctness kernel wrong"));
  EXPECT_EQ(gpu_summary(r), "1x H100 80GB HBM3 1 failed");
  EXPECT_TRUE(contains(render_table(r), "WRONG"));
}

TEST(ProbeFake, LowBandwidthFails) {
  test::LocalShell shell;
  ProbeReport r = run_probe(shell, fake("low_bandwidth")).host;
  ASSERT_EQ(r.gpus.size(), 1u);
  EXPECT_NEAR(r.gpus[0].bandwidth_gbps.value_or(0), 100, 2);
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
  EXPECT_TRUE(any_contains(report_problems(r), "under half of the H100 SXM's 3350 GB/s"));
}

TEST(ProbeFake, UncorrectedEccErrorsFail) {
  test::LocalShell shell;
  ProbeReport r = run_probe(shell, fake("ecc")).host;
  ASSERT_EQ(r.gpus.size(), 1u);
  EXPECT_EQ(r.gpus[0].ecc_uncorrected, 3u);
  EXPECT_EQ(r.gpus[0].kernel_ok, true);
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
  EXPECT_TRUE(any_contains(report_problems(r), "3 uncorrected ECC errors"));
}

struct HintCase {
  std::string mode;
  int code;
  std::string hint;
  bool per_gpu;  // the error stops one GPU's probe rather than the whole driver
};

TEST(ProbeFake, CudaErrorsMapToHints) {
  const std::vector<HintCase> cases = {
      {"err802", 802, "systemctl enable --now nvidia-fabricmanager", false},
      {"err803", 803, "reboot", false},
      {"err999", 999, "dmesg", false},
      {"jit_missing", 221, "libnvidia-ptxjitcompiler.so.1", true},
      {"launch_fail", 719, "dmesg", true},
  };
  for (const HintCase& c : cases) {
    SCOPED_TRACE(c.mode);
    test::LocalShell shell;
    ProbeReport r = run_probe(shell, fake(c.mode)).host;
    EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
    const std::optional<CudaFailure>& e = c.per_gpu ? r.gpus.at(0).error : r.error;
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, c.code);
    EXPECT_TRUE(contains(e->hint, c.hint)) << e->hint;
    EXPECT_EQ(e->hint, cuda_error_hint(c.code)) << "payload and C++ hint tables disagree";
    EXPECT_EQ(r.status, c.per_gpu ? ProbeStatus::ok : ProbeStatus::error);
    EXPECT_TRUE(contains(render_table(r), c.hint)) << render_table(r);
  }
}

TEST(ProbeFake, NoDeviceIsNoGpu) {
  for (const std::string mode : {"no_device", "zero_devices"}) {
    test::LocalShell shell;
    ProbeReport r = run_probe(shell, fake(mode)).host;
    EXPECT_EQ(r.status, ProbeStatus::no_gpu) << mode;
    EXPECT_TRUE(contains(r.message, "no NVIDIA GPU")) << r.message;
    EXPECT_EQ(verdict_exit_code(r), exit_code::k_no_gpu);
    EXPECT_EQ(gpu_summary(r), "no GPU");
  }
}

TEST(ProbeFake, MissingLibcudaIsNoDriver) {
  test::LocalShell shell;
  ProbeOptions o = fake("ok");
  o.env["GM_PROBE_LIBCUDA"] = "/nonexistent/libcuda.so.1";
  ProbeResult result = run_probe(shell, o);
  EXPECT_EQ(result.host.status, ProbeStatus::no_driver);
  EXPECT_TRUE(contains(result.host.message, "no NVIDIA driver on this host"));
  EXPECT_EQ(verdict_exit_code(result), exit_code::k_no_gpu);
  EXPECT_EQ(gpu_summary(result.host), "no driver");
  EXPECT_EQ(to_json(result)["host"]["status"], "no_driver");
}

TEST(ProbeFake, JitFailureSurfacesTheLog) {
  test::LocalShell shell;
  ProbeReport r = run_probe(shell, fake("jit_fail")).host;
  ASSERT_EQ(r.gpus.size(), 1u);
  const GpuReport& g = r.gpus[0];
  EXPECT_TRUE(g.ptx_target.empty());
  ASSERT_EQ(g.ptx_attempts.size(), 4u);  // sm_90, then the three fallbacks
  EXPECT_EQ(g.ptx_attempts[3].target, "sm_35");
  ASSERT_TRUE(g.error);
  EXPECT_EQ(g.error->code, 218);
  EXPECT_TRUE(contains(g.error->log, "fake JIT failure"));
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
  EXPECT_TRUE(contains(render_table(r), "fake JIT failure planted")) << render_table(r);
  EXPECT_EQ(r.raw["host"]["jit_failures"].size(), 4u);
  EXPECT_TRUE(contains(to_json(r)["host"]["jit_failures"][0]["log"], "fake JIT failure"));
}

TEST(ProbeFake, PtxTooNewFallsBackToLowerTarget) {
  test::LocalShell shell;
  ProbeReport r = run_probe(shell, fake("ptx_too_new", {{"FAKE_CUDA_MAX_PTX", "6.3"}})).host;
  ASSERT_EQ(r.gpus.size(), 1u);
  const GpuReport& g = r.gpus[0];
  EXPECT_EQ(g.ptx_target, "sm_75");
  EXPECT_EQ(g.ptx_version, "6.3");
  ASSERT_EQ(g.ptx_attempts.size(), 2u);
  EXPECT_FALSE(g.ptx_attempts[0].ok);
  EXPECT_EQ(g.ptx_attempts[0].error->code, 222);
  EXPECT_EQ(g.kernel_ok, true);
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_ok);
  EXPECT_TRUE(contains(render_table(r), "Unsupported .version 7.8"));
}

TEST(ProbeFake, MissingGpuForInstanceTypeFails) {
  test::LocalShell shell;
  ProbeOptions o = fake("ok");
  o.expected_gpus = 2;
  ProbeReport r = run_probe(shell, o).host;
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
  EXPECT_TRUE(any_contains(report_problems(r), "expected 2 GPUs, found 1"));
  EXPECT_EQ(gpu_summary(r), "1x H100 80GB HBM3 (expected 2)");

  o.env["FAKE_CUDA_DEVICES"] = "2";
  r = run_probe(shell, o).host;
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_ok);
  EXPECT_EQ(gpu_summary(r), "2x H100 80GB HBM3 ok");
}

TEST(ProbeFake, OneBadGpuOfTwo) {
  test::LocalShell shell;
  ProbeOptions o = fake("wrong_result", {{"FAKE_CUDA_DEVICES", "2"}, {"FAKE_CUDA_BAD_GPU", "1"}});
  ProbeReport r = run_probe(shell, o).host;
  ASSERT_EQ(r.gpus.size(), 2u);
  EXPECT_TRUE(gpu_problems(r.gpus[0]).empty());
  EXPECT_FALSE(gpu_problems(r.gpus[1]).empty());
  EXPECT_EQ(r.gpus[1].pci_bus_id, "00000000:11:00.0");
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_failure);
  EXPECT_EQ(gpu_summary(r), "2x H100 80GB HBM3 1 failed");
  EXPECT_TRUE(any_contains(report_problems(r), "host: GPU 1: correctness kernel wrong"));
}

TEST(ProbeFake, NoNvmlStillProbes) {
  test::LocalShell shell;
  ProbeOptions o = fake("ok");
  o.env["GM_PROBE_LIBNVML"] = "/nonexistent/libnvidia-ml.so.1";
  ProbeReport r = run_probe(shell, o).host;
  ASSERT_EQ(r.gpus.size(), 1u);
  EXPECT_FALSE(r.host.nvml);
  EXPECT_FALSE(r.gpus[0].temperature_c);
  EXPECT_FALSE(r.gpus[0].ecc_uncorrected);
  EXPECT_EQ(r.gpus[0].ecc_enabled, true);  // from the driver API attribute
  EXPECT_EQ(verdict_exit_code(r), exit_code::k_ok);
}

TEST(ProbeFake, NoPythonIsAClearError) {
  test::LocalShell shell;
  ProbeOptions o = fake("ok");
  o.python = "/nonexistent/python3";
  try {
    run_probe(shell, o);
    FAIL() << "expected gm::Error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "no Python 3 interpreter")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "python3")) << e.hint();
  }
  EXPECT_FALSE(fs::exists(uploaded_path(shell)));
}

// A stand-in for `docker` on the machine: records its arguments, applies -e, and runs the
// command after the image (python3 -) with the payload from stdin, like `docker run -i` would.
fs::path fake_docker(const std::string& body) {
  fs::path dir = fs::path(testing::TempDir()) / ("gm_fake_docker_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path script = dir / "docker";
  std::ofstream(script) << "#!/bin/sh\necho \"$@\" > " << (dir / "args").string() << "\n" << body;
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

TEST(ProbeFake, ContainerModeRunsPayloadOnStdin) {
  fs::path docker = fake_docker(
      "while [ $# -gt 0 ]; do case \"$1\" in -e) export \"$2\"; shift 2;; python3) shift; exec "
      "python3 \"$@\";; *) shift;; esac; done\nexit 99\n");
  test::LocalShell shell;
  ProbeOptions o = fake("ok");
  o.container = true;
  o.docker_command = docker.string();
  o.container_image = "python:3.12-slim";
  ProbeResult result = run_probe(shell, o);
  ASSERT_TRUE(result.container);
  EXPECT_EQ(result.container->where, "container");
  EXPECT_EQ(result.container->status, ProbeStatus::ok) << result.container->message;
  EXPECT_EQ(result.container->gpus.size(), 1u);
  EXPECT_EQ(verdict_exit_code(result), exit_code::k_ok);
  std::ifstream args_file(docker.parent_path() / "args");
  std::string args((std::istreambuf_iterator<char>(args_file)), {});
  EXPECT_TRUE(contains(args, "run --rm --gpus all -i")) << args;
  EXPECT_TRUE(contains(args, "python:3.12-slim python3 -")) << args;
  EXPECT_TRUE(contains(render_table(result), "[container]"));
  EXPECT_EQ(to_json(result)["container"]["where"], "container");
  fs::remove_all(docker.parent_path());
}

TEST(ProbeFake, ContainerWithoutGpuAccessFails) {
  fs::path docker = fake_docker(
      "echo 'docker: Error response from daemon: could not select device driver \"\" with "
      "capabilities: [[gpu]].' >&2\nexit 125\n");
  test::LocalShell shell;
  ProbeOptions o = fake("ok");
  o.container = true;
  o.docker_command = docker.string();
  ProbeResult result = run_probe(shell, o);
  EXPECT_EQ(verdict_exit_code(result.host), exit_code::k_ok);
  ASSERT_TRUE(result.container);
  EXPECT_EQ(result.container->status, ProbeStatus::error);
  EXPECT_TRUE(contains(result.container->message, "could not select device driver"));
  EXPECT_TRUE(contains(result.container->hint, "nvidia-ctk runtime configure"));
  EXPECT_EQ(verdict_exit_code(result), exit_code::k_failure);
  fs::remove_all(docker.parent_path());
}

TEST(ProbeVerdict, SpecTableMatchesModelNames) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Tesla T4", "T4"},
      {"NVIDIA T4G", "T4G"},
      {"NVIDIA A10G", "A10G"},
      {"NVIDIA L4", "L4"},
      {"NVIDIA L40S", "L40S"},
      {"Tesla V100-SXM2-16GB", "V100"},
      {"NVIDIA A100-SXM4-40GB", "A100 40GB"},
      {"NVIDIA A100-SXM4-80GB", "A100 80GB"},
      {"NVIDIA H100 80GB HBM3", "H100 SXM"},
      {"NVIDIA H100 PCIe", "H100 PCIe"},
      {"NVIDIA H200", "H200"},
      {"NVIDIA B200", "B200"},
  };
  for (const auto& [name, model] : cases) {
    const GpuSpec* spec = find_spec(name);
    ASSERT_NE(spec, nullptr) << name;
    EXPECT_EQ(spec->model, model) << name;
    EXPECT_GT(spec->bandwidth_gbps, 0);
    EXPECT_GT(spec->fp32_tflops, 0);
  }
  EXPECT_EQ(find_spec("Tesla K80"), nullptr);
}

TEST(ProbeVerdict, BandwidthThresholdIsHalfTheSpec) {
  GpuReport g;
  g.name = "Tesla T4";  // 320 GB/s
  g.kernel_ok = true;
  g.bandwidth_gbps = 161;
  EXPECT_TRUE(gpu_problems(g).empty());
  g.bandwidth_gbps = 159;
  EXPECT_EQ(gpu_problems(g).size(), 1u);
  g.name = "Tesla K80";  // no spec: no bandwidth verdict
  EXPECT_TRUE(gpu_problems(g).empty());
}

TEST(ProbeVerdict, RejectsOutputThatIsNotAReport) {
  EXPECT_THROW(parse_report("Traceback (most recent call last):"), Error);
  EXPECT_THROW(parse_report("{\"no\": \"status\"}"), Error);
  ProbeReport r = parse_report(R"({"status":"no_gpu","message":"no NVIDIA GPU"})");
  EXPECT_EQ(r.status, ProbeStatus::no_gpu);
}

}  // namespace
}  // namespace gm::probe
