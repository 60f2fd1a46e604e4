#!/usr/bin/env python3
"""gpumachine GPU probe payload.

Runs on a GPU host that has nothing but the NVIDIA driver: no nvcc, no CUDA toolkit, no compiler.
It talks to libcuda.so.1 (driver API) and libnvidia-ml.so.1 (NVML) through ctypes, generates PTX
for each device's compute capability at run time, lets the driver JIT it, runs a correctness
kernel, a memory-bandwidth kernel and an FP32 FMA kernel, and prints ONE JSON document on stdout.
Nothing else is ever written to stdout; diagnostics go to stderr.

Test hooks: GM_PROBE_LIBCUDA / GM_PROBE_LIBNVML replace the library paths.
Developer modes: --emit-ptx sm_XY [--kernel check|copy|fma|all] [--ptx-version X.Y]
                 --select-target CC --driver-version N
"""

import ctypes
import json
import os
import platform
import random
import socket
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

SCHEMA = "gpumachine.probe/1"

# --------------------------------------------------------------------------------------------
# PTX target and ISA-version selection (nvidia-facts.md section 5)
# --------------------------------------------------------------------------------------------

# Base (forward-portable) targets and the lowest PTX ISA that knows each one. Arch-specific
# (sm_90a) and family (sm_100f) targets are deliberately absent: they do not JIT on later GPUs.
TARGET_MIN_ISA = {
    35: (3, 1), 37: (4, 1),
    50: (4, 0), 52: (4, 1), 53: (4, 2),
    60: (5, 0), 61: (5, 0), 62: (5, 0),
    70: (6, 0), 72: (6, 1), 75: (6, 3),
    80: (7, 0), 86: (7, 1), 87: (7, 4), 89: (7, 8),
    90: (7, 8),
    100: (8, 6), 103: (8, 8), 110: (9, 0),
    120: (8, 7), 121: (8, 8),
}

# CUDA driver API level (cuDriverGetVersion / 10) -> newest PTX ISA its JIT accepts.
CUDA_MAX_ISA = [
    (50, (3, 1)), (55, (3, 2)), (60, (4, 0)), (65, (4, 1)), (70, (4, 2)), (75, (4, 3)),
    (80, (5, 0)), (90, (6, 0)), (91, (6, 1)), (92, (6, 2)), (100, (6, 3)), (101, (6, 4)),
    (102, (6, 5)), (110, (7, 0)), (111, (7, 1)), (112, (7, 2)), (113, (7, 3)), (114, (7, 4)),
    (115, (7, 5)), (116, (7, 6)), (117, (7, 7)), (118, (7, 8)), (120, (8, 0)), (121, (8, 1)),
    (122, (8, 2)), (123, (8, 3)), (124, (8, 4)), (125, (8, 5)), (126, (8, 5)), (127, (8, 6)),
    (128, (8, 7)), (129, (8, 8)), (130, (9, 0)), (131, (9, 1)),
]

# Fallbacks after the native target, in order (facts file, rule 4).
FALLBACKS = [(75, (6, 3)), (50, (4, 0)), (35, (4, 3))]


def max_isa_for_driver(driver_version: int) -> Tuple[int, int]:
    """Newest PTX ISA the driver's JIT knows; unknown newer drivers get the newest we know."""
    level = (driver_version // 1000) * 10 + (driver_version % 1000) // 10
    best = (3, 0)
    for cuda, isa in CUDA_MAX_ISA:
        if level >= cuda:
            best = isa
    return best


def parse_cc(text: str) -> int:
    """'9.0', '90', 'sm_90' or '12.1' -> 90 / 121."""
    text = text.strip().lower()
    if text.startswith("sm_"):
        text = text[3:]
    if "." in text:
        major, minor = text.split(".", 1)
        return int(major) * 10 + int(minor)
    return int(text)


def select_targets(cc: int, driver_version: int) -> List[Tuple[str, str]]:
    """Ordered (target, ptx version) candidates for a device: native first, then fallbacks.

    The native target is the highest base target at or below the device's compute capability
    whose minimum ISA the driver accepts; its .version is that minimum, so the PTX is as old
    (and as widely accepted) as the target allows.
    """
    limit = max_isa_for_driver(driver_version) if driver_version > 0 else (99, 9)
    out = []  # type: List[Tuple[str, str]]
    native = [t for t in sorted(TARGET_MIN_ISA) if t <= cc and TARGET_MIN_ISA[t] <= limit]
    if native:
        t = native[-1]
        out.append(("sm_%d" % t, "%d.%d" % TARGET_MIN_ISA[t]))
    top = native[-1] if native else cc + 1
    for t, isa in FALLBACKS:
        cand = ("sm_%d" % t, "%d.%d" % isa)
        # A fallback only helps with a lower target than the native one.
        if t < top and t <= cc and isa <= limit:
            out.append(cand)
    return out


# --------------------------------------------------------------------------------------------
# PTX generation
# --------------------------------------------------------------------------------------------

CHECK_A = 5  # y[i] = CHECK_A * x[i] + i, x < 2^24 so no lane overflows 32 bits
FMA_CHAINS = 8  # independent dependency chains per thread (hides the FMA latency)
FMA_UNROLL = 16  # FMA rounds per loop trip
THREADS = 256


def _ptx_check() -> str:
    # Grid-stride loop: y[i] = a * x[i] + i (32-bit integers).
    return """
.visible .entry gm_check(
    .param .u64 p_y,
    .param .u64 p_x,
    .param .u32 p_n,
    .param .u32 p_a
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<12>;
    .reg .b64 %rd<8>;

    ld.param.u64 %rd1, [p_y];
    ld.param.u64 %rd2, [p_x];
    ld.param.u32 %r1, [p_n];
    ld.param.u32 %r2, [p_a];
    cvta.to.global.u64 %rd1, %rd1;
    cvta.to.global.u64 %rd2, %rd2;
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.u32 %r6, %r3, %r4, %r5;
    mov.u32 %r7, %nctaid.x;
    mul.lo.u32 %r8, %r7, %r4;
    setp.ge.u32 %p1, %r6, %r1;
    @%p1 bra CHECK_DONE;
CHECK_LOOP:
    mul.wide.u32 %rd3, %r6, 4;
    add.s64 %rd4, %rd2, %rd3;
    ld.global.u32 %r9, [%rd4];
    mad.lo.u32 %r10, %r9, %r2, %r6;
    add.s64 %rd5, %rd1, %rd3;
    st.global.u32 [%rd5], %r10;
    add.u32 %r6, %r6, %r8;
    setp.lt.u32 %p1, %r6, %r1;
    @%p1 bra CHECK_LOOP;
CHECK_DONE:
    ret;
}
"""


def _ptx_copy() -> str:
    # Device-to-device copy of n 16-byte vectors, grid-stride, 4 independent 128-bit loads in
    # flight per thread before the stores, so the memory system sees enough outstanding requests
    # to approach peak bandwidth.
    loads = []
    stores = []
    for k in range(4):
        regs = "{%%v%d, %%v%d, %%v%d, %%v%d}" % (4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3)
        src = "%rd9" if k == 0 else "%rd14"
        dst = "%rd10" if k == 0 else "%rd15"
        if k == 1:
            loads.append("    add.s64 %rd14, %rd9, %rd7;")
            stores.append("    add.s64 %rd15, %rd10, %rd7;")
        elif k > 1:
            loads.append("    add.s64 %rd14, %rd14, %rd7;")
            stores.append("    add.s64 %rd15, %rd15, %rd7;")
        loads.append("    ld.global.v4.u32 %s, [%s];" % (regs, src))
        stores.append("    st.global.v4.u32 [%s], %s;" % (dst, regs))
    return """
.visible .entry gm_copy(
    .param .u64 p_dst,
    .param .u64 p_src,
    .param .u64 p_n
)
{
    .reg .pred %p<3>;
    .reg .b32 %r<8>;
    .reg .b32 %v<16>;
    .reg .b64 %rd<20>;

    ld.param.u64 %rd1, [p_dst];
    ld.param.u64 %rd2, [p_src];
    ld.param.u64 %rd3, [p_n];
    cvta.to.global.u64 %rd1, %rd1;
    cvta.to.global.u64 %rd2, %rd2;
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mov.u32 %r4, %nctaid.x;
    mul.wide.u32 %rd4, %r1, %r2;
    cvt.u64.u32 %rd5, %r3;
    add.s64 %rd4, %rd4, %rd5;
    mul.wide.u32 %rd6, %r4, %r2;
    shl.b64 %rd7, %rd6, 4;
    shl.b64 %rd8, %rd4, 4;
    add.s64 %rd9, %rd2, %rd8;
    add.s64 %rd10, %rd1, %rd8;
    mul.lo.s64 %rd11, %rd6, 3;
    shl.b64 %rd12, %rd7, 2;
    shl.b64 %rd13, %rd6, 2;
COPY_MAIN:
    add.s64 %rd16, %rd4, %rd11;
    setp.ge.u64 %p1, %rd16, %rd3;
    @%p1 bra COPY_TAIL;
""" + "\n".join(loads) + "\n" + "\n".join(stores) + """
    add.s64 %rd9, %rd9, %rd12;
    add.s64 %rd10, %rd10, %rd12;
    add.s64 %rd4, %rd4, %rd13;
    bra.uni COPY_MAIN;
COPY_TAIL:
    setp.ge.u64 %p2, %rd4, %rd3;
    @%p2 bra COPY_DONE;
    ld.global.v4.u32 {%v0, %v1, %v2, %v3}, [%rd9];
    st.global.v4.u32 [%rd10], {%v0, %v1, %v2, %v3};
    add.s64 %rd9, %rd9, %rd7;
    add.s64 %rd10, %rd10, %rd7;
    add.s64 %rd4, %rd4, %rd6;
    bra.uni COPY_TAIL;
COPY_DONE:
    ret;
}
"""


def _ptx_fma() -> str:
    # FMA_CHAINS independent chains x = x * a + b per thread, FMA_UNROLL rounds per loop trip;
    # the chains are summed and stored so the compiler cannot drop them.
    init = ["    add.f32 %%f%d, %%f0, 0f%08X;" % (c, _f32_bits(0.125 * c))
            for c in range(1, FMA_CHAINS)]
    body = []
    for _ in range(FMA_UNROLL):
        for c in range(FMA_CHAINS):
            body.append("    fma.rn.f32 %%f%d, %%f%d, %%fa, %%fb;" % (c, c))
    total = ["    add.f32 %%f0, %%f0, %%f%d;" % c for c in range(1, FMA_CHAINS)]
    return """
.visible .entry gm_fma(
    .param .u64 p_out,
    .param .u32 p_iters,
    .param .f32 p_a,
    .param .f32 p_b
)
{
    .reg .pred %p<2>;
    .reg .b32 %r<10>;
    .reg .b64 %rd<5>;
    .reg .f32 %f<""" + str(FMA_CHAINS) + """>;
    .reg .f32 %fa;
    .reg .f32 %fb;

    ld.param.u64 %rd1, [p_out];
    ld.param.u32 %r1, [p_iters];
    ld.param.f32 %fa, [p_a];
    ld.param.f32 %fb, [p_b];
    cvta.to.global.u64 %rd1, %rd1;
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.u32 %r5, %r2, %r3, %r4;
    and.b32 %r6, %r5, 1023;
    cvt.rn.f32.u32 %f0, %r6;
    mul.f32 %f0, %f0, 0f3A800000;
""" + "\n".join(init) + """
    mov.u32 %r7, 0;
    setp.eq.u32 %p1, %r1, 0;
    @%p1 bra FMA_STORE;
FMA_LOOP:
""" + "\n".join(body) + """
    add.u32 %r7, %r7, 1;
    setp.lt.u32 %p1, %r7, %r1;
    @%p1 bra FMA_LOOP;
FMA_STORE:
""" + "\n".join(total) + """
    mul.wide.u32 %rd2, %r5, 4;
    add.s64 %rd3, %rd1, %rd2;
    st.global.f32 [%rd3], %f0;
    ret;
}
"""


def _f32_bits(value: float) -> int:
    return ctypes.c_uint32.from_buffer_copy(ctypes.c_float(value)).value


KERNELS = {"check": _ptx_check, "copy": _ptx_copy, "fma": _ptx_fma}


def emit_ptx(target: str, version: str, kernel: str = "all") -> str:
    """The PTX module text: one kernel, or all three ('all') as the probe JITs them."""
    names = list(KERNELS) if kernel == "all" else [kernel]
    head = "//\n// gpumachine probe kernels\n//\n\n.version %s\n.target %s\n.address_size 64\n" % (
        version, target)
    return head + "".join(KERNELS[n]() for n in names)


# --------------------------------------------------------------------------------------------
# CUDA errors and hints
# --------------------------------------------------------------------------------------------

CUDA_NAMES = {
    1: "CUDA_ERROR_INVALID_VALUE", 2: "CUDA_ERROR_OUT_OF_MEMORY",
    3: "CUDA_ERROR_NOT_INITIALIZED", 46: "CUDA_ERROR_DEVICE_UNAVAILABLE",
    100: "CUDA_ERROR_NO_DEVICE", 101: "CUDA_ERROR_INVALID_DEVICE",
    200: "CUDA_ERROR_INVALID_IMAGE", 209: "CUDA_ERROR_NO_BINARY_FOR_GPU",
    218: "CUDA_ERROR_INVALID_PTX", 221: "CUDA_ERROR_JIT_COMPILER_NOT_FOUND",
    222: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", 304: "CUDA_ERROR_OPERATING_SYSTEM",
    500: "CUDA_ERROR_NOT_FOUND", 700: "CUDA_ERROR_ILLEGAL_ADDRESS",
    719: "CUDA_ERROR_LAUNCH_FAILED", 802: "CUDA_ERROR_SYSTEM_NOT_READY",
    803: "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", 804: "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
    999: "CUDA_ERROR_UNKNOWN",
}

CUDA_HINTS = {
    2: "not enough free GPU memory: another process holds it (see nvidia-smi)",
    46: "the GPU is busy or unavailable (exclusive compute mode held by another process?)",
    100: "the driver sees no NVIDIA GPU: check `lspci -d 10de:` and CUDA_VISIBLE_DEVICES",
    218: "the driver's JIT rejected the PTX: see the JIT log",
    221: "the PTX JIT compiler library (libnvidia-ptxjitcompiler.so.1) is missing: "
         "install the driver's compute userspace (libnvidia-compute / nvidia-driver-cuda)",
    222: "the PTX is newer than this driver's JIT supports: update the NVIDIA driver",
    304: "the OS refused access to the GPU: check permissions on /dev/nvidia*",
    700: "the kernel faulted on the GPU: look at `dmesg` for Xid errors",
    719: "the kernel failed on the GPU: look at `dmesg` for Xid errors",
    802: "Fabric Manager is not running (NVSwitch host): "
         "systemctl enable --now nvidia-fabricmanager (its version must match the driver)",
    803: "the loaded kernel module and the userspace driver differ "
         "(driver/library version mismatch): reboot the machine",
    804: "forward-compatibility libcuda is not supported on this GPU: remove the cuda-compat package",
    999: "unknown driver error: look at `dmesg` (grep -iE 'NVRM|Xid')",
}

# JIT errors where an older target/ISA may still work.
JIT_RETRYABLE = (200, 209, 218, 222)


class CudaError(Exception):
    def __init__(self, call: str, code: int, name: str, log: str = "") -> None:
        Exception.__init__(self, "%s failed: %s (%d)" % (call, name, code))
        self.call = call
        self.code = code
        self.name = name
        self.log = log

    def to_json(self) -> Dict[str, Any]:
        out = {"call": self.call, "code": self.code, "name": self.name,
               "hint": CUDA_HINTS.get(self.code)}  # type: Dict[str, Any]
        if self.log:
            out["log"] = self.log
        return out


# --------------------------------------------------------------------------------------------
# Driver API binding
# --------------------------------------------------------------------------------------------

c_int, c_uint, c_size_t, c_void_p, c_char_p = (
    ctypes.c_int, ctypes.c_uint, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p)
c_u64, c_float, P = ctypes.c_uint64, ctypes.c_float, ctypes.POINTER

# ABI symbol names (cuda.h remaps the unsuffixed names to these with macros).
CU_SIGNATURES = {
    "cuInit": [c_uint],
    "cuDriverGetVersion": [P(c_int)],
    "cuDeviceGetCount": [P(c_int)],
    "cuDeviceGet": [P(c_int), c_int],
    "cuDeviceGetName": [c_char_p, c_int, c_int],
    "cuDeviceGetAttribute": [P(c_int), c_int, c_int],
    "cuDeviceTotalMem_v2": [P(c_size_t), c_int],
    "cuDeviceGetUuid_v2": [c_char_p, c_int],
    "cuDeviceGetUuid": [c_char_p, c_int],
    "cuDeviceGetPCIBusId": [c_char_p, c_int, c_int],
    "cuDevicePrimaryCtxRetain": [P(c_void_p), c_int],
    "cuDevicePrimaryCtxRelease_v2": [c_int],
    "cuDevicePrimaryCtxRelease": [c_int],
    "cuCtxSetCurrent": [c_void_p],
    "cuCtxCreate_v2": [P(c_void_p), c_uint, c_int],
    "cuCtxDestroy_v2": [c_void_p],
    "cuCtxSynchronize": [],
    "cuModuleLoadDataEx": [P(c_void_p), c_char_p, c_uint, P(c_int), P(c_void_p)],
    "cuModuleGetFunction": [P(c_void_p), c_void_p, c_char_p],
    "cuModuleUnload": [c_void_p],
    "cuMemAlloc_v2": [P(c_u64), c_size_t],
    "cuMemFree_v2": [c_u64],
    "cuMemcpyHtoD_v2": [c_u64, c_void_p, c_size_t],
    "cuMemcpyDtoH_v2": [c_void_p, c_u64, c_size_t],
    "cuMemGetInfo_v2": [P(c_size_t), P(c_size_t)],
    "cuLaunchKernel": [c_void_p, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint,
                       c_void_p, P(c_void_p), P(c_void_p)],
    "cuEventCreate": [P(c_void_p), c_uint],
    "cuEventRecord": [c_void_p, c_void_p],
    "cuEventSynchronize": [c_void_p],
    "cuEventElapsedTime": [P(c_float), c_void_p, c_void_p],
    "cuEventDestroy_v2": [c_void_p],
    "cuGetErrorName": [c_int, P(c_char_p)],
}

ATTR_MULTIPROCESSOR_COUNT = 16
ATTR_ECC_ENABLED = 32
ATTR_CC_MAJOR = 75
ATTR_CC_MINOR = 76
ATTR_MAX_THREADS_PER_SM = 39

CU_JIT_INFO_LOG_BUFFER = 3
CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4
CU_JIT_ERROR_LOG_BUFFER = 5
CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6
JIT_LOG_BYTES = 16384


class Cuda:
    """Thin checked wrapper over libcuda: every call raises CudaError on a non-zero result."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lib = ctypes.CDLL(path)
        for name, argtypes in CU_SIGNATURES.items():
            fn = getattr(self.lib, name, None)
            if fn is not None:
                fn.argtypes = argtypes
                fn.restype = c_int

    def has(self, name: str) -> bool:
        return getattr(self.lib, name, None) is not None

    def error_name(self, code: int) -> str:
        if self.has("cuGetErrorName"):
            out = c_char_p()
            if self.lib.cuGetErrorName(code, ctypes.byref(out)) == 0 and out.value:
                return out.value.decode("ascii", "replace")
        return CUDA_NAMES.get(code, "CUDA_ERROR_%d" % code)

    def call(self, name: str, *args: Any) -> None:
        rc = getattr(self.lib, name)(*args)
        if rc != 0:
            raise CudaError(name, rc, self.error_name(rc))


# --------------------------------------------------------------------------------------------
# NVML binding (optional: everything it adds is reported as null when it is absent)
# --------------------------------------------------------------------------------------------

NVML_SIGNATURES = {
    "nvmlInit_v2": [],
    "nvmlShutdown": [],
    "nvmlSystemGetDriverVersion": [c_char_p, c_uint],
    "nvmlDeviceGetHandleByPciBusId_v2": [c_char_p, P(c_void_p)],
    "nvmlDeviceGetHandleByUUID": [c_char_p, P(c_void_p)],
    "nvmlDeviceGetName": [c_void_p, c_char_p, c_uint],
    "nvmlDeviceGetUUID": [c_void_p, c_char_p, c_uint],
    "nvmlDeviceGetEccMode": [c_void_p, P(c_int), P(c_int)],
    "nvmlDeviceGetTotalEccErrors": [c_void_p, c_int, c_int, P(ctypes.c_ulonglong)],
    "nvmlDeviceGetTemperatureV": [c_void_p, c_void_p],
    "nvmlDeviceGetTemperature": [c_void_p, c_int, P(c_uint)],
    "nvmlDeviceGetPowerUsage": [c_void_p, P(c_uint)],
}

NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_TEMPERATURE_GPU = 0


class NvmlTemperatureV1(ctypes.Structure):
    _fields_ = [("version", c_uint), ("sensorType", c_int), ("temperature", c_int)]


class Nvml:
    def __init__(self, path: str) -> None:
        self.lib = ctypes.CDLL(path)
        for name, argtypes in NVML_SIGNATURES.items():
            fn = getattr(self.lib, name, None)
            if fn is not None:
                fn.argtypes = argtypes
                fn.restype = c_int
        rc = self.lib.nvmlInit_v2()
        if rc != 0:
            raise RuntimeError("nvmlInit_v2 returned %d" % rc)

    def _fn(self, name: str) -> Any:
        return getattr(self.lib, name, None)

    def driver_version(self) -> Optional[str]:
        buf = ctypes.create_string_buffer(96)
        if self.lib.nvmlSystemGetDriverVersion(buf, 96) == 0:
            return buf.value.decode("ascii", "replace")
        return None

    def handle(self, pci_bus_id: str, uuid: str) -> Optional[int]:
        # CUDA and NVML enumerate devices in different orders: match by PCI bus id or UUID.
        h = c_void_p()
        fn = self._fn("nvmlDeviceGetHandleByPciBusId_v2")
        if fn is not None and pci_bus_id and fn(pci_bus_id.encode(), ctypes.byref(h)) == 0:
            return h.value
        fn = self._fn("nvmlDeviceGetHandleByUUID")
        if fn is not None and uuid and fn(uuid.encode(), ctypes.byref(h)) == 0:
            return h.value
        return None

    def device_info(self, h: int) -> Dict[str, Any]:
        info = {"ecc_enabled": None, "ecc_uncorrected": None, "temperature_c": None,
                "power_w": None}  # type: Dict[str, Any]
        cur, pend = c_int(), c_int()
        fn = self._fn("nvmlDeviceGetEccMode")
        if fn is not None and fn(h, ctypes.byref(cur), ctypes.byref(pend)) == 0:
            info["ecc_enabled"] = bool(cur.value)
            n = ctypes.c_ulonglong()
            fn = self._fn("nvmlDeviceGetTotalEccErrors")
            if fn is not None and fn(h, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC,
                                     ctypes.byref(n)) == 0:
                info["ecc_uncorrected"] = int(n.value)
        info["temperature_c"] = self._temperature(h)
        mw = c_uint()
        fn = self._fn("nvmlDeviceGetPowerUsage")
        if fn is not None and fn(h, ctypes.byref(mw)) == 0:
            info["power_w"] = round(mw.value / 1000.0, 1)
        return info

    def _temperature(self, h: int) -> Optional[int]:
        # nvmlDeviceGetTemperature is deprecated in CUDA 13; prefer the versioned call.
        fn = self._fn("nvmlDeviceGetTemperatureV")
        if fn is not None:
            t = NvmlTemperatureV1()
            t.version = ctypes.sizeof(NvmlTemperatureV1) | (1 << 24)
            t.sensorType = NVML_TEMPERATURE_GPU
            if fn(h, ctypes.byref(t)) == 0:
                return int(t.temperature)
        fn = self._fn("nvmlDeviceGetTemperature")
        v = c_uint()
        if fn is not None and fn(h, NVML_TEMPERATURE_GPU, ctypes.byref(v)) == 0:
            return int(v.value)
        return None

    def shutdown(self) -> None:
        self.lib.nvmlShutdown()


# --------------------------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------------------------

CHECK_N = 1 << 24  # 16,777,216 elements
COPY_MAX_BYTES = 1 << 30  # per buffer
COPY_ITERS = 50
FMA_TARGET_MS = 100.0


def log(msg: str) -> None:
    sys.stderr.write("gpumachine-probe: %s\n" % msg)
    sys.stderr.flush()


def format_uuid(raw: bytes) -> str:
    h = raw.hex() if hasattr(raw, "hex") else "".join("%02x" % b for b in raw)
    return "GPU-%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def index_bytes(n: int) -> bytes:
    """Little-endian uint32 values 0..n-1 (n a multiple of 65536, at most 2^24), built with
    strided byte assignment instead of a Python loop."""
    out = bytearray(4 * n)
    out[0::4] = bytes(range(256)) * (n // 256)
    out[1::4] = b"".join(bytes([v]) * 256 for v in range(256)) * (n // 65536)
    out[2::4] = b"".join(bytes([v]) * 65536 for v in range(n // 65536))
    return bytes(out)


def check_input(n: int) -> bytearray:
    """Pseudo-random uint32 input below 2^24 (so a * x + i cannot overflow), with a period that
    is not a power of two so indexing mistakes do not alias."""
    period = 65557
    rnd = random.Random(20261122)
    block = rnd.getrandbits(32 * period).to_bytes(4 * period, "little")
    x = bytearray((block * (n // period + 1))[:4 * n])
    x[3::4] = bytes(n)
    return x


def expected_check(x: bytes, n: int, a: int) -> bytes:
    """a * x[i] + i for all i, computed as one big-integer expression: each 32-bit lane stays
    below 2^32, so lanes never carry into each other."""
    big = a * int.from_bytes(bytes(x), "little") + int.from_bytes(index_bytes(n), "little")
    return big.to_bytes(4 * n, "little")


def find_mismatches(got: bytes, want: bytes) -> Tuple[int, Optional[int], Optional[int],
                                                        Optional[int]]:
    """(count, first index, got, want) over uint32 elements; only mismatching chunks are
    walked element by element."""
    count, first, first_got, first_want = 0, None, None, None
    chunk = 1 << 20
    for off in range(0, len(want), chunk):
        g, w = got[off:off + chunk], want[off:off + chunk]
        if g == w:
            continue
        for j in range(0, len(w), 4):
            if g[j:j + 4] != w[j:j + 4]:
                count += 1
                if first is None:
                    first = (off + j) // 4
                    first_got = int.from_bytes(g[j:j + 4], "little")
                    first_want = int.from_bytes(w[j:j + 4], "little")
    return count, first, first_got, first_want


class Device:
    def __init__(self, cu: Cuda, ordinal: int) -> None:
        self.cu = cu
        self.ordinal = ordinal
        dev = c_int()
        cu.call("cuDeviceGet", ctypes.byref(dev), ordinal)
        self.dev = dev.value
        self.ctx = None  # type: Optional[int]
        self.primary = False
        self.module = c_void_p()
        self.allocs = []  # type: List[int]

    def attr(self, attr: int) -> int:
        v = c_int()
        self.cu.call("cuDeviceGetAttribute", ctypes.byref(v), attr, self.dev)
        return v.value

    def identity(self) -> Dict[str, Any]:
        cu = self.cu
        name = ctypes.create_string_buffer(256)
        cu.call("cuDeviceGetName", name, 256, self.dev)
        uuid = None
        raw = ctypes.create_string_buffer(16)
        for fn in ("cuDeviceGetUuid_v2", "cuDeviceGetUuid"):
            if cu.has(fn):
                cu.call(fn, raw, self.dev)
                uuid = format_uuid(raw.raw[:16])
                break
        bus = ctypes.create_string_buffer(64)
        cu.call("cuDeviceGetPCIBusId", bus, 64, self.dev)
        total = c_size_t()
        cu.call("cuDeviceTotalMem_v2", ctypes.byref(total), self.dev)
        major, minor = self.attr(ATTR_CC_MAJOR), self.attr(ATTR_CC_MINOR)
        return {
            "name": name.value.decode("utf-8", "replace"),
            "uuid": uuid,
            "pci_bus_id": bus.value.decode("ascii", "replace"),
            "memory_total_bytes": int(total.value),
            "compute_capability": "%d.%d" % (major, minor),
            "sm_count": self.attr(ATTR_MULTIPROCESSOR_COUNT),
            "ecc_enabled": bool(self.attr(ATTR_ECC_ENABLED)),
        }

    def open(self) -> None:
        cu, ctx = self.cu, c_void_p()
        if cu.has("cuDevicePrimaryCtxRetain") and cu.has("cuCtxSetCurrent"):
            cu.call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), self.dev)
            self.primary = True
            self.ctx = ctx.value
            cu.call("cuCtxSetCurrent", ctx)
        else:
            cu.call("cuCtxCreate_v2", ctypes.byref(ctx), 0, self.dev)
            self.ctx = ctx.value

    def close(self) -> None:
        # Best effort: after a sticky error (e.g. an illegal address) these fail too.
        lib = self.cu.lib
        for ptr in self.allocs:
            lib.cuMemFree_v2(ptr)
        self.allocs = []
        if self.module.value:
            lib.cuModuleUnload(self.module)
            self.module = c_void_p()
        if self.ctx is None:
            return
        if self.primary:
            for fn in ("cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"):
                if self.cu.has(fn):
                    getattr(lib, fn)(self.dev)
                    break
        else:
            lib.cuCtxDestroy_v2(c_void_p(self.ctx))
        self.ctx = None

    def mem_info(self) -> Tuple[int, int]:
        free, total = c_size_t(), c_size_t()
        self.cu.call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
        return int(free.value), int(total.value)

    def alloc(self, nbytes: int) -> int:
        ptr = c_u64()
        self.cu.call("cuMemAlloc_v2", ctypes.byref(ptr), nbytes)
        self.allocs.append(ptr.value)
        return ptr.value

    def free(self, ptr: int) -> None:
        self.allocs.remove(ptr)
        self.cu.call("cuMemFree_v2", c_u64(ptr))

    def load_module(self, ptx: str) -> str:
        """JIT the PTX; returns the info log. Raises CudaError carrying the error log."""
        info = ctypes.create_string_buffer(JIT_LOG_BYTES)
        err = ctypes.create_string_buffer(JIT_LOG_BYTES)
        opts = (c_int * 4)(CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                           CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
        # Size options are passed by value in the pointer slot, as the driver API defines.
        vals = (c_void_p * 4)(ctypes.cast(info, c_void_p), c_void_p(JIT_LOG_BYTES),
                              ctypes.cast(err, c_void_p), c_void_p(JIT_LOG_BYTES))
        module = c_void_p()
        rc = self.cu.lib.cuModuleLoadDataEx(ctypes.byref(module), ptx.encode("ascii"), 4, opts,
                                            vals)
        if rc != 0:
            text = err.value.decode("utf-8", "replace").strip()
            raise CudaError("cuModuleLoadDataEx", rc, self.cu.error_name(rc), text)
        self.module = module
        return info.value.decode("utf-8", "replace").strip()

    def function(self, name: str) -> c_void_p:
        fn = c_void_p()
        self.cu.call("cuModuleGetFunction", ctypes.byref(fn), self.module, name.encode())
        return fn

    def launch(self, fn: c_void_p, blocks: int, threads: int, args: List[Any]) -> None:
        params = (c_void_p * len(args))(*[ctypes.cast(ctypes.byref(a), c_void_p) for a in args])
        self.cu.call("cuLaunchKernel", fn, blocks, 1, 1, threads, 1, 1, 0, None, params, None)

    def timed(self, action: Any) -> float:
        """Milliseconds the GPU spent on action(), measured with events."""
        cu = self.cu
        start, stop = c_void_p(), c_void_p()
        cu.call("cuEventCreate", ctypes.byref(start), 0)
        cu.call("cuEventCreate", ctypes.byref(stop), 0)
        try:
            cu.call("cuEventRecord", start, None)
            action()
            cu.call("cuEventRecord", stop, None)
            cu.call("cuEventSynchronize", stop)
            ms = c_float()
            cu.call("cuEventElapsedTime", ctypes.byref(ms), start, stop)
            return float(ms.value)
        finally:
            if cu.has("cuEventDestroy_v2"):
                cu.lib.cuEventDestroy_v2(start)
                cu.lib.cuEventDestroy_v2(stop)


def jit(dev: Device, cc: int, driver_version: int, section: Dict[str, Any]) -> None:
    """Tries the target candidates in order, recording every attempt in section (the GPU
    report's "ptx" object) as it goes, so a failure still reports what was tried."""
    attempts = section.setdefault("attempts", [])  # type: List[Dict[str, Any]]
    section.update({"target": None, "version": None})
    last = None  # type: Optional[CudaError]
    for target, version in select_targets(cc, driver_version):
        try:
            info = dev.load_module(emit_ptx(target, version))
        except CudaError as e:
            attempts.append({"target": target, "version": version, "ok": False,
                             "error": e.to_json()})
            log("JIT of %s / PTX %s failed: %s" % (target, version, e))
            if e.code not in JIT_RETRYABLE:
                raise
            last = e
            continue
        attempts.append({"target": target, "version": version, "ok": True})
        section.update({"target": target, "version": version})
        if info:
            section["info_log"] = info
        return
    if last is not None:
        raise last
    raise CudaError("cuModuleLoadDataEx", 209, "CUDA_ERROR_NO_BINARY_FOR_GPU",
                    "no PTX target fits compute capability %d.%d" % (cc // 10, cc % 10))


def run_check(dev: Device, sm_count: int) -> Dict[str, Any]:
    n, a = CHECK_N, CHECK_A
    x = check_input(n)
    nbytes = 4 * n
    dx, dy = dev.alloc(nbytes), dev.alloc(nbytes)
    xbuf = (ctypes.c_char * nbytes).from_buffer(x)
    dev.cu.call("cuMemcpyHtoD_v2", c_u64(dx), xbuf, nbytes)
    fn = dev.function("gm_check")
    args = [c_u64(dy), c_u64(dx), ctypes.c_uint32(n), ctypes.c_uint32(a)]
    ms = dev.timed(lambda: dev.launch(fn, sm_count * 4, THREADS, args))
    dev.cu.call("cuCtxSynchronize")
    got = bytearray(nbytes)
    gbuf = (ctypes.c_char * nbytes).from_buffer(got)
    dev.cu.call("cuMemcpyDtoH_v2", gbuf, c_u64(dy), nbytes)
    del xbuf, gbuf  # release the exported buffers before x/got are touched again
    t0 = time.time()
    want = expected_check(x, n, a)
    ok = got == want
    result = {"ok": ok, "elements": n, "formula": "y[i] = %d*x[i] + i (u32)" % a,
              "mismatches": 0, "kernel_ms": round(ms, 3)}  # type: Dict[str, Any]
    if not ok:
        count, first, g, w = find_mismatches(bytes(got), want)
        result.update({"mismatches": count, "first_mismatch": {"index": first, "got": g,
                                                                 "want": w}})
    result["host_check_ms"] = round((time.time() - t0) * 1000.0, 1)
    dev.free(dx)
    dev.free(dy)
    return result


def run_bandwidth(dev: Device, sm_count: int, blocks_per_sm: int) -> Dict[str, Any]:
    free, _ = dev.mem_info()
    # Two buffers; each at most 1 GiB and together at most a quarter of the free memory.
    size = min(COPY_MAX_BYTES, free // 8)
    size -= size % (1 << 20)
    if size < (1 << 20):
        raise CudaError("cuMemGetInfo_v2", 2, "CUDA_ERROR_OUT_OF_MEMORY")
    src, dst = dev.alloc(size), dev.alloc(size)
    fn = dev.function("gm_copy")
    blocks = sm_count * blocks_per_sm
    args = [c_u64(dst), c_u64(src), c_u64(size // 16)]
    dev.launch(fn, blocks, THREADS, args)  # warm-up: first touch, clocks up
    dev.cu.call("cuCtxSynchronize")

    def loop() -> None:
        for _ in range(COPY_ITERS):
            dev.launch(fn, blocks, THREADS, args)

    ms = dev.timed(loop)
    moved = 2 * size * COPY_ITERS  # every byte is read once and written once
    dev.free(src)
    dev.free(dst)
    return {"gbps": round(moved / (ms / 1000.0) / 1e9, 1) if ms > 0 else None,
            "buffer_bytes": size, "iterations": COPY_ITERS, "bytes_moved": moved,
            "elapsed_ms": round(ms, 3), "blocks": blocks, "threads": THREADS}


def run_fma(dev: Device, sm_count: int, blocks_per_sm: int) -> Dict[str, Any]:
    blocks = sm_count * blocks_per_sm
    nthreads = blocks * THREADS
    out = dev.alloc(4 * nthreads)
    fn = dev.function("gm_fma")
    a, b = c_float(0.9999), c_float(0.0001)

    def once(iters: int) -> float:
        args = [c_u64(out), ctypes.c_uint32(iters), a, b]
        return dev.timed(lambda: dev.launch(fn, blocks, THREADS, args))

    iters = 1024
    ms = once(iters)  # calibration run (about a millisecond on a big GPU), also warms up
    # Scale the trip count so the timed run lasts about FMA_TARGET_MS.
    if ms > 0:
        iters = int(min(1 << 22, max(64, iters * FMA_TARGET_MS / ms)))
    ms = once(iters)
    dev.free(out)
    flops = 2.0 * nthreads * iters * FMA_CHAINS * FMA_UNROLL
    return {"tflops": round(flops / (ms / 1000.0) / 1e12, 2) if ms > 0 else None,
            "flops": flops, "elapsed_ms": round(ms, 3), "iterations": iters,
            "blocks": blocks, "threads": THREADS}


def probe_device(cu: Cuda, ordinal: int, driver_version: int,
                 nvml: Optional[Nvml]) -> Dict[str, Any]:
    gpu = {"index": ordinal}  # type: Dict[str, Any]
    dev = None
    try:
        dev = Device(cu, ordinal)
        ident = dev.identity()
        gpu["ecc"] = {"enabled": ident.pop("ecc_enabled"), "uncorrected_volatile": None}
        gpu.update(ident)
        gpu.update({"temperature_c": None, "power_w": None})
        if nvml is not None:
            h = nvml.handle(gpu["pci_bus_id"], gpu["uuid"] or "")
            if h is not None:
                info = nvml.device_info(h)
                if info["ecc_enabled"] is not None:
                    gpu["ecc"]["enabled"] = info["ecc_enabled"]
                gpu["ecc"]["uncorrected_volatile"] = info["ecc_uncorrected"]
                gpu["temperature_c"] = info["temperature_c"]
                gpu["power_w"] = info["power_w"]
        cc = parse_cc(gpu["compute_capability"])
        sm_count = max(1, gpu["sm_count"])
        blocks_per_sm = max(1, dev.attr(ATTR_MAX_THREADS_PER_SM) // THREADS)
        dev.open()
        free, _ = dev.mem_info()
        gpu["memory_free_bytes"] = free
        gpu["ptx"] = {}
        jit(dev, cc, driver_version, gpu["ptx"])
        gpu["kernel"] = run_check(dev, sm_count)
        gpu["bandwidth"] = run_bandwidth(dev, sm_count, blocks_per_sm)
        gpu["fma"] = run_fma(dev, sm_count, blocks_per_sm)
        gpu["error"] = None
    except CudaError as e:
        log("GPU %d: %s" % (ordinal, e))
        gpu["error"] = e.to_json()
    finally:
        if dev is not None:
            dev.close()
    return gpu


def summarize_jit(report: Dict[str, Any]) -> None:
    """Host-level view of the JIT: which targets compiled, and every failed attempt's log."""
    targets = []  # type: List[str]
    failures = []  # type: List[Dict[str, Any]]
    for gpu in report["gpus"]:
        ptx = gpu.get("ptx") or {}
        if ptx.get("target") and ptx["target"] not in targets:
            targets.append(ptx["target"])
        for a in ptx.get("attempts", []):
            if not a["ok"]:
                err = a["error"]
                failures.append({"gpu": gpu["index"], "target": a["target"],
                                 "version": a["version"], "code": err["code"],
                                 "name": err["name"], "log": err.get("log", "")})
    report["host"]["ptx_targets"] = targets
    report["host"]["jit_failures"] = failures


def driver_version_from_proc() -> Optional[str]:
    try:
        with open("/proc/driver/nvidia/version") as f:
            first = f.readline()
    except OSError:
        return None
    for word in first.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return None


def probe() -> Dict[str, Any]:
    report = {
        "schema": SCHEMA, "status": "ok", "message": None, "hint": None, "error": None,
        "host": {"hostname": socket.gethostname(), "arch": platform.machine(),
                 "python": platform.python_version(), "in_container": os.path.exists(
                     "/.dockerenv"), "libcuda": None, "nvml": False, "driver_version": None,
                 "cuda_driver_version": None, "cuda_driver_version_text": None},
        "gpus": [],
    }  # type: Dict[str, Any]
    host = report["host"]
    libcuda = os.environ.get("GM_PROBE_LIBCUDA") or "libcuda.so.1"
    try:
        cu = Cuda(libcuda)
    except OSError as e:
        report.update({"status": "no_driver", "message": "no NVIDIA driver on this host "
                       "(cannot load %s: %s)" % (libcuda, e),
                       "hint": "install the NVIDIA driver (gpumachine provision)"})
        host["driver_version"] = driver_version_from_proc()
        return report
    host["libcuda"] = libcuda

    nvml = None
    libnvml = os.environ.get("GM_PROBE_LIBNVML") or "libnvidia-ml.so.1"
    try:
        nvml = Nvml(libnvml)
        host["nvml"] = True
        host["driver_version"] = nvml.driver_version()
    except (OSError, RuntimeError, AttributeError) as e:
        host["nvml_error"] = str(e)
        nvml = None
    if not host["driver_version"]:
        host["driver_version"] = driver_version_from_proc()

    try:
        v = c_int()
        cu.call("cuDriverGetVersion", ctypes.byref(v))
        host["cuda_driver_version"] = v.value
        host["cuda_driver_version_text"] = "%d.%d" % (v.value // 1000, (v.value % 1000) // 10)
        try:
            cu.call("cuInit", 0)
        except CudaError as e:
            if e.code == 100:
                report.update({"status": "no_gpu", "message": "no NVIDIA GPU (cuInit: %s)" %
                               e.name, "hint": CUDA_HINTS[100], "error": e.to_json()})
                return report
            raise
        count = c_int()
        cu.call("cuDeviceGetCount", ctypes.byref(count))
        if count.value == 0:
            report.update({"status": "no_gpu", "message": "no NVIDIA GPU (the driver sees 0 "
                           "devices)", "hint": CUDA_HINTS[100]})
            return report
        for i in range(count.value):
            report["gpus"].append(probe_device(cu, i, v.value, nvml))
        summarize_jit(report)
    except CudaError as e:
        report.update({"status": "error", "message": str(e), "hint": CUDA_HINTS.get(e.code),
                       "error": e.to_json()})
    finally:
        if nvml is not None:
            nvml.shutdown()
    return report


def main(argv: List[str]) -> int:
    args = list(argv)

    def option(name: str, default: Optional[str] = None) -> Optional[str]:
        if name in args:
            i = args.index(name)
            if i + 1 >= len(args):
                raise SystemExit("%s needs a value" % name)
            return args[i + 1]
        return default

    if "--emit-ptx" in args:
        cc = parse_cc(option("--emit-ptx") or "")
        version = option("--ptx-version")
        if version is None:
            isa = TARGET_MIN_ISA.get(cc)
            if isa is None:
                raise SystemExit("unknown target sm_%d" % cc)
            version = "%d.%d" % isa
        sys.stdout.write(emit_ptx("sm_%d" % cc, version, option("--kernel", "all") or "all"))
        return 0
    if "--select-target" in args:
        cc = parse_cc(option("--select-target") or "")
        driver = int(option("--driver-version", "0") or "0")
        cands = select_targets(cc, driver)
        out = {"target": cands[0][0] if cands else None,
               "version": cands[0][1] if cands else None,
               "candidates": [{"target": t, "version": v} for t, v in cands]}
        sys.stdout.write(json.dumps(out) + "\n")
        return 0
    try:
        report = probe()
    except Exception as e:  # noqa: BLE001 - the caller must always get one JSON document
        report = {"schema": SCHEMA, "status": "error", "message": "probe crashed: %r" % (e,),
                  "hint": None, "error": None, "host": {}, "gpus": []}
    sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
