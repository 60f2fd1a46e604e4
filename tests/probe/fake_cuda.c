/* A fake NVIDIA driver for the probe tests: exports the subset of the CUDA driver API and NVML
 * that src/probe/payload.py calls, under their ABI names, so the payload loads it through
 * GM_PROBE_LIBCUDA / GM_PROBE_LIBNVML exactly as it loads libcuda.so.1 on a real host.
 *
 * "Device memory" is host memory; kernels are "run" by doing their work on it, so the payload's
 * host-side correctness check really checks. Time is virtual: each launch advances a clock by
 * the work it did divided by a planted bandwidth or FLOP rate, and events read that clock.
 *
 * Behaviour is chosen by environment variables:
 *   FAKE_CUDA_MODE     ok (default) | no_device | zero_devices | err802 | err803 | err999 |
 *                      jit_missing | jit_fail | ptx_too_new | wrong_result | low_bandwidth |
 *                      ecc | launch_fail
 *   FAKE_CUDA_BAD_GPU  ordinal the per-GPU failure modes apply to (default: every GPU)
 *   FAKE_CUDA_DEVICES  number of GPUs (default 1)
 *   FAKE_CUDA_NAME     device name (default "NVIDIA H100 80GB HBM3")
 *   FAKE_CUDA_CC       compute capability as major*10+minor (default 90)
 *   FAKE_CUDA_DRIVER   cuDriverGetVersion result (default 13000)
 *   FAKE_CUDA_MAX_PTX  newest PTX ISA the "JIT" accepts in ptx_too_new mode (default 6.3)
 *   FAKE_CUDA_MEM_MB   device memory in MiB (default 512)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef uint64_t CUdeviceptr;

/* Work rates the virtual clock uses (bytes or FLOPs per millisecond). */
static const double k_good_bytes_per_ms = 3000e9 / 1000.0; /* 3 TB/s: a healthy H100 */
static const double k_low_bytes_per_ms = 100e9 / 1000.0;   /* 100 GB/s: far below spec */
static const double k_flops_per_ms = 50e12 / 1000.0;       /* 50 TFLOP/s */
/* Must match FMA_CHAINS * FMA_UNROLL in payload.py: FMAs per thread per loop trip. */
static const double k_fma_per_trip = 128.0;

static double g_clock_ms = 0.0;
static int g_current = -1; /* device of the current context */
static size_t g_allocated = 0;

static const char* env_or(const char* name, const char* fallback) {
  const char* v = getenv(name);
  return v && *v ? v : fallback;
}
static int env_int(const char* name, int fallback) {
  const char* v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}
static int mode_is(const char* mode) {
  return strcmp(env_or("FAKE_CUDA_MODE", "ok"), mode) == 0;
}
/* Per-GPU failure modes hit FAKE_CUDA_BAD_GPU only, or every GPU when it is unset. */
static int bad_gpu(int ordinal, const char* mode) {
  if (!mode_is(mode))
    return 0;
  int bad = env_int("FAKE_CUDA_BAD_GPU", -1);
  return bad < 0 || bad == ordinal;
}
static int device_count(void) {
  return mode_is("zero_devices") ? 0 : env_int("FAKE_CUDA_DEVICES", 1);
}
static size_t total_mem(void) {
  return (size_t)env_int("FAKE_CUDA_MEM_MB", 512) << 20;
}

/* ---- driver API ------------------------------------------------------------------------- */

EXPORT CUresult cuDriverGetVersion(int* v) {
  *v = env_int("FAKE_CUDA_DRIVER", 13000);
  return 0;
}

EXPORT CUresult cuInit(unsigned flags) {
  (void)flags;
  if (mode_is("no_device"))
    return 100;
  if (mode_is("err802"))
    return 802;
  if (mode_is("err803"))
    return 803;
  if (mode_is("err999"))
    return 999;
  return 0;
}

EXPORT CUresult cuGetErrorName(CUresult code, const char** name) {
  switch (code) {
    case 0:
      *name = "CUDA_SUCCESS";
      return 0;
    case 2:
      *name = "CUDA_ERROR_OUT_OF_MEMORY";
      return 0;
    case 100:
      *name = "CUDA_ERROR_NO_DEVICE";
      return 0;
    case 101:
      *name = "CUDA_ERROR_INVALID_DEVICE";
      return 0;
    case 201:
      *name = "CUDA_ERROR_INVALID_CONTEXT";
      return 0;
    case 209:
      *name = "CUDA_ERROR_NO_BINARY_FOR_GPU";
      return 0;
    case 218:
      *name = "CUDA_ERROR_INVALID_PTX";
      return 0;
    case 221:
      *name = "CUDA_ERROR_JIT_COMPILER_NOT_FOUND";
      return 0;
    case 222:
      *name = "CUDA_ERROR_UNSUPPORTED_PTX_VERSION";
      return 0;
    case 500:
      *name = "CUDA_ERROR_NOT_FOUND";
      return 0;
    case 719:
      *name = "CUDA_ERROR_LAUNCH_FAILED";
      return 0;
    case 802:
      *name = "CUDA_ERROR_SYSTEM_NOT_READY";
      return 0;
    case 803:
      *name = "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
      return 0;
    case 999:
      *name = "CUDA_ERROR_UNKNOWN";
      return 0;
    default:
      *name = NULL;
      return 1;
  }
}

EXPORT CUresult cuDeviceGetCount(int* count) {
  *count = device_count();
  return 0;
}

EXPORT CUresult cuDeviceGet(CUdevice* dev, int ordinal) {
  if (ordinal < 0 || ordinal >= device_count())
    return 101;
  *dev = ordinal;
  return 0;
}

EXPORT CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  (void)dev;
  snprintf(name, (size_t)len, "%s", env_or("FAKE_CUDA_NAME", "NVIDIA H100 80GB HBM3"));
  return 0;
}

EXPORT CUresult cuDeviceGetAttribute(int* value, int attr, CUdevice dev) {
  (void)dev;
  int cc = env_int("FAKE_CUDA_CC", 90);
  switch (attr) {
    case 1:
      *value = 1024;
      return 0; /* MAX_THREADS_PER_BLOCK */
    case 16:
      *value = 4;
      return 0; /* MULTIPROCESSOR_COUNT: small, the host does the work */
    case 32:
      *value = 1;
      return 0; /* ECC_ENABLED */
    case 75:
      *value = cc / 10;
      return 0;
    case 76:
      *value = cc % 10;
      return 0;
    case 39:
      *value = 2048;
      return 0; /* MAX_THREADS_PER_MULTIPROCESSOR */
    default:
      return 1;
  }
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  (void)dev;
  *bytes = total_mem();
  return 0;
}

static void fill_uuid(char* out, CUdevice dev) {
  for (int i = 0; i < 16; ++i)
    out[i] = (char)(0xa0 + i + dev);
}
EXPORT CUresult cuDeviceGetUuid(char* uuid, CUdevice dev) {
  fill_uuid(uuid, dev);
  return 0;
}
EXPORT CUresult cuDeviceGetUuid_v2(char* uuid, CUdevice dev) {
  fill_uuid(uuid, dev);
  return 0;
}

EXPORT CUresult cuDeviceGetPCIBusId(char* bus, int len, CUdevice dev) {
  snprintf(bus, (size_t)len, "00000000:%02X:00.0", 0x10 + dev);
  return 0;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice dev) {
  *ctx = (void*)(uintptr_t)(0x1000 + dev);
  return 0;
}
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  (void)dev;
  g_current = -1;
  return 0;
}
EXPORT CUresult cuCtxSetCurrent(void* ctx) {
  g_current = ctx ? (int)((uintptr_t)ctx - 0x1000) : -1;
  return 0;
}
EXPORT CUresult cuCtxCreate_v2(void** ctx, unsigned flags, CUdevice dev) {
  (void)flags;
  *ctx = (void*)(uintptr_t)(0x1000 + dev);
  g_current = dev;
  return 0;
}
EXPORT CUresult cuCtxDestroy_v2(void* ctx) {
  (void)ctx;
  g_current = -1;
  return 0;
}
EXPORT CUresult cuCtxSynchronize(void) {
  return g_current < 0 ? 201 : 0;
}

EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  if (g_current < 0)
    return 201;
  *total_bytes = total_mem();
  *free_bytes = total_mem() - g_allocated;
  return 0;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* ptr, size_t bytes) {
  if (g_current < 0)
    return 201;
  if (g_allocated + bytes > total_mem())
    return 2;
  void* p = malloc(bytes + sizeof(size_t));
  if (!p)
    return 2;
  *(size_t*)p = bytes;
  g_allocated += bytes;
  *ptr = (CUdeviceptr)(uintptr_t)((char*)p + sizeof(size_t));
  return 0;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr ptr) {
  char* p = (char*)(uintptr_t)ptr - sizeof(size_t);
  g_allocated -= *(size_t*)p;
  free(p);
  return 0;
}
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
  memcpy((void*)(uintptr_t)dst, src, bytes);
  return 0;
}
EXPORT CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
  memcpy(dst, (const void*)(uintptr_t)src, bytes);
  return 0;
}

/* ---- JIT -------------------------------------------------------------------------------- */

typedef struct {
  char* ptx;
} FakeModule;
typedef struct {
  int kind; /* 0 check, 1 copy, 2 fma */
} FakeFunction;
static FakeFunction g_functions[3] = {{0}, {1}, {2}};

/* "X.Y" -> X*10+Y, or -1. */
static int parse_version(const char* text) {
  int major = 0, minor = 0;
  if (sscanf(text, "%d.%d", &major, &minor) != 2)
    return -1;
  return major * 10 + minor;
}

static void write_log(void* buf, size_t size, const char* text) {
  if (buf && size > 0)
    snprintf((char*)buf, size, "%s", text);
}

EXPORT CUresult cuModuleLoadDataEx(void** module, const void* image, unsigned n, int* options,
                                   void** values) {
  void* err_buf = NULL;
  size_t err_size = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (options[i] == 5)
      err_buf = values[i];
    if (options[i] == 6)
      err_size = (size_t)(uintptr_t)values[i];
  }
  const char* ptx = (const char*)image;
  const char* ver = strstr(ptx, ".version ");
  const char* tgt = strstr(ptx, ".target sm_");
  if (mode_is("jit_missing"))
    return 221;
  if (!ver || !tgt) {
    write_log(err_buf, err_size, "ptxas fatal   : no .version or .target directive");
    return 218;
  }
  int version = parse_version(ver + 9);
  int target = atoi(tgt + 11);
  if (mode_is("jit_fail")) {
    write_log(err_buf, err_size,
              "ptxas application ptx input, line 42; error   : fake JIT failure planted by "
              "FAKE_CUDA_MODE=jit_fail");
    return 218;
  }
  int max = parse_version(env_or("FAKE_CUDA_MAX_PTX", "6.3"));
  if (mode_is("ptx_too_new") && version > max) {
    char msg[128];
    snprintf(msg, sizeof msg,
             "ptxas fatal   : Unsupported .version %d.%d; current version is '%d.%d'", version / 10,
             version % 10, max / 10, max % 10);
    write_log(err_buf, err_size, msg);
    return 222;
  }
  if (target > env_int("FAKE_CUDA_CC", 90))
    return 209;
  FakeModule* m = malloc(sizeof *m);
  m->ptx = strdup(ptx);
  *module = m;
  return 0;
}

EXPORT CUresult cuModuleUnload(void* module) {
  FakeModule* m = module;
  free(m->ptx);
  free(m);
  return 0;
}

EXPORT CUresult cuModuleGetFunction(void** fn, void* module, const char* name) {
  static const char* names[3] = {"gm_check", "gm_copy", "gm_fma"};
  FakeModule* m = module;
  for (int k = 0; k < 3; ++k) {
    char entry[64];
    snprintf(entry, sizeof entry, ".entry %s(", names[k]);
    if (strcmp(name, names[k]) == 0 && strstr(m->ptx, entry)) {
      *fn = &g_functions[k];
      return 0;
    }
  }
  return 500;
}

EXPORT CUresult cuLaunchKernel(void* fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                               unsigned by, unsigned bz, unsigned shared, void* stream,
                               void** params, void** extra) {
  (void)shared;
  (void)stream;
  (void)extra;
  if (g_current < 0)
    return 201;
  if (bad_gpu(g_current, "launch_fail"))
    return 719;
  const FakeFunction* f = fn;
  double threads = (double)gx * gy * gz * bx * by * bz;
  if (f->kind == 0) {
    uint32_t* y = (uint32_t*)(uintptr_t)(*(uint64_t*)params[0]);
    const uint32_t* x = (const uint32_t*)(uintptr_t)(*(uint64_t*)params[1]);
    uint32_t n = *(uint32_t*)params[2];
    uint32_t a = *(uint32_t*)params[3];
    for (uint32_t i = 0; i < n; ++i)
      y[i] = a * x[i] + i;
    if (bad_gpu(g_current, "wrong_result"))
      y[n / 2 + 7] ^= 0x10u;
    g_clock_ms += 1.0;
  } else if (f->kind == 1) {
    void* dst = (void*)(uintptr_t)(*(uint64_t*)params[0]);
    const void* src = (const void*)(uintptr_t)(*(uint64_t*)params[1]);
    uint64_t n = *(uint64_t*)params[2];
    memcpy(dst, src, n * 16);
    double rate = bad_gpu(g_current, "low_bandwidth") ? k_low_bytes_per_ms : k_good_bytes_per_ms;
    g_clock_ms += 2.0 * 16.0 * (double)n / rate;
  } else {
    float* out = (float*)(uintptr_t)(*(uint64_t*)params[0]);
    uint32_t iters = *(uint32_t*)params[1];
    for (size_t t = 0; t < (size_t)threads; ++t)
      out[t] = 1.0f;
    g_clock_ms += 2.0 * threads * iters * k_fma_per_trip / k_flops_per_ms;
  }
  return 0;
}

/* ---- events ----------------------------------------------------------------------------- */

EXPORT CUresult cuEventCreate(void** ev, unsigned flags) {
  (void)flags;
  *ev = calloc(1, sizeof(double));
  return 0;
}
EXPORT CUresult cuEventRecord(void* ev, void* stream) {
  (void)stream;
  *(double*)ev = g_clock_ms;
  return 0;
}
EXPORT CUresult cuEventSynchronize(void* ev) {
  (void)ev;
  return 0;
}
EXPORT CUresult cuEventElapsedTime(float* ms, void* start, void* stop) {
  *ms = (float)(*(double*)stop - *(double*)start);
  return 0;
}
EXPORT CUresult cuEventDestroy_v2(void* ev) {
  free(ev);
  return 0;
}

/* ---- NVML ------------------------------------------------------------------------------- */

typedef int nvmlReturn_t;
typedef struct {
  unsigned version;
  int sensor;
  int temperature;
} FakeTemperatureV1;

EXPORT nvmlReturn_t nvmlInit_v2(void) {
  return mode_is("err803") ? 18 : 0;
}
EXPORT nvmlReturn_t nvmlShutdown(void) {
  return 0;
}
EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* out, unsigned len) {
  snprintf(out, len, "%s", env_or("FAKE_NVML_DRIVER", "595.91.07"));
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* bus, void** handle) {
  unsigned domain = 0, b = 0;
  if (sscanf(bus, "%x:%x", &domain, &b) != 2)
    return 2;
  int ordinal = (int)b - 0x10;
  if (ordinal < 0 || ordinal >= device_count())
    return 6;
  *handle = (void*)(uintptr_t)(0x2000 + ordinal);
  return 0;
}
static int nvml_ordinal(void* handle) {
  return (int)((uintptr_t)handle - 0x2000);
}
EXPORT nvmlReturn_t nvmlDeviceGetEccMode(void* h, int* current, int* pending) {
  (void)h;
  *current = *pending = 1;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(void* h, int type, int counter,
                                                unsigned long long* count) {
  if (type != 1 || counter != 0)
    return 2; /* the probe asks for uncorrected, volatile */
  *count = bad_gpu(nvml_ordinal(h), "ecc") ? 3 : 0;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetTemperatureV(void* h, FakeTemperatureV1* t) {
  (void)h;
  if (t->version != (sizeof(FakeTemperatureV1) | (1u << 24)))
    return 25; /* ARGUMENT_VERSION_MISMATCH */
  t->temperature = 41;
  return 0;
}
EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(void* h, unsigned* mw) {
  (void)h;
  *mw = 71234;
  return 0;
}
