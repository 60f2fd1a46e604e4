"""Static catalogue: regions, availability zones, instance types, images and SSM parameters.

Image ids are derived from the region, so an AMI id from one region is unknown in another
(``InvalidAMIID.NotFound``), as on EC2.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

DEFAULT_REGIONS: dict[str, list[str]] = {
    "us-east-1": ["a", "b", "c", "d", "e", "f"],
    "us-east-2": ["a", "b", "c"],
    "us-west-1": ["a", "c"],
    "us-west-2": ["a", "b", "c", "d"],
    "eu-west-1": ["a", "b", "c"],
    "eu-central-1": ["a", "b", "c"],
    "ap-northeast-1": ["a", "c", "d"],
    "ap-southeast-1": ["a", "b", "c"],
}

_REGION_CODES = {"us-east-1": "use1", "us-east-2": "use2", "us-west-1": "usw1",
                 "us-west-2": "usw2", "eu-west-1": "euw1", "eu-central-1": "euc1",
                 "ap-northeast-1": "apne1", "ap-southeast-1": "apse1"}


def zone_id(region: str, zone: str) -> str:
    code = _REGION_CODES.get(region, region.replace("-", "")[:6])
    return f"{code}-az{ord(zone[-1]) - ord('a') + 1}"


@dataclass
class Gpu:
    name: str
    manufacturer: str
    memory_mib: int


@dataclass
class InstanceType:
    name: str
    arch: str
    vcpus: int
    memory_mib: int
    gpu: Gpu | None = None
    gpu_count: int = 0
    hypervisor: str = "nitro"
    efa: bool = False  # supports Elastic Fabric Adapter interfaces (EFA_TYPES)

    def describe(self) -> dict:
        out: dict = {
            "instanceType": self.name,
            "currentGeneration": not self.name.startswith("p3."),
            "freeTierEligible": self.name in ("t3.micro",),
            "supportedUsageClasses": ["on-demand", "spot"],
            "supportedRootDeviceTypes": ["ebs"],
            "supportedVirtualizationTypes": ["hvm"],
            "bareMetal": self.name.endswith(".metal"),
            "hypervisor": None if self.name.endswith(".metal") else self.hypervisor,
            "processorInfo": {"supportedArchitectures": [self.arch]},
            "vCpuInfo": {"defaultVCpus": self.vcpus},
            "memoryInfo": {"sizeInMiB": self.memory_mib},
            "instanceStorageSupported": self.name.startswith(("g4dn", "g5.", "g6", "p4d", "p5")),
            "ebsInfo": {"ebsOptimizedSupport": "default", "encryptionSupport": "supported"},
            "networkInfo": {"networkPerformance": "Up to 25 Gigabit", "ipv6Supported": True,
                            "efaSupported": self.efa},
        }
        if self.gpu is not None:
            out["gpuInfo"] = {
                "gpus": [{"name": self.gpu.name, "manufacturer": self.gpu.manufacturer,
                          "count": self.gpu_count,
                          "memoryInfo": {"sizeInMiB": self.gpu.memory_mib}}],
                "totalGpuMemoryInMiB": self.gpu.memory_mib * self.gpu_count,
            }
        return out


_T4 = Gpu("T4", "NVIDIA", 16384)
_T4G = Gpu("T4g", "NVIDIA", 16384)
_A10G = Gpu("A10G", "NVIDIA", 24576)
_L4 = Gpu("L4", "NVIDIA", 22888)
_L40S = Gpu("L40S", "NVIDIA", 45776)
_V100 = Gpu("V100", "NVIDIA", 16384)
_A100 = Gpu("A100", "NVIDIA", 40960)
_H100 = Gpu("H100", "NVIDIA", 81920)

# (size, vcpus, memory GiB, gpus)
_G4DN = [("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
         ("8xlarge", 32, 128, 1), ("12xlarge", 48, 192, 4), ("16xlarge", 64, 256, 1),
         ("metal", 96, 384, 8)]
_G5 = [("xlarge", 4, 16, 1), ("2xlarge", 8, 32, 1), ("4xlarge", 16, 64, 1),
       ("8xlarge", 32, 128, 1), ("12xlarge", 48, 192, 4), ("16xlarge", 64, 256, 1),
       ("24xlarge", 96, 384, 4), ("48xlarge", 192, 768, 8)]
_G5G = [("xlarge", 4, 8, 1), ("2xlarge", 8, 16, 1), ("4xlarge", 16, 32, 1),
        ("8xlarge", 32, 64, 1), ("16xlarge", 64, 128, 2), ("metal", 64, 128, 2)]
_G6E = [("xlarge", 4, 32, 1), ("2xlarge", 8, 64, 1), ("4xlarge", 16, 128, 1),
        ("8xlarge", 32, 256, 1), ("12xlarge", 48, 384, 4), ("16xlarge", 64, 512, 1),
        ("24xlarge", 96, 768, 4), ("48xlarge", 192, 1536, 8)]
_P3 = [("2xlarge", 8, 61, 1), ("8xlarge", 32, 244, 4), ("16xlarge", 64, 488, 8)]
_T3 = [("micro", 2, 1), ("small", 2, 2), ("medium", 2, 4), ("large", 2, 8),
       ("xlarge", 4, 16), ("2xlarge", 8, 32)]
_M5 = [("large", 2, 8), ("xlarge", 4, 16), ("2xlarge", 8, 32), ("4xlarge", 16, 64)]
_C7G = [("medium", 1, 2), ("large", 2, 4), ("xlarge", 4, 8), ("2xlarge", 8, 16)]


# The catalogue's types that AWS lists as supporting EFA (EC2 User Guide, "Elastic Fabric Adapter",
# supported instance types); the others refuse an InterfaceType=efa interface.
EFA_TYPES = {"p4d.24xlarge", "p5.48xlarge", "g5.48xlarge", "g4dn.8xlarge", "g4dn.12xlarge",
             "g4dn.16xlarge", "g4dn.metal"}


def _build_types() -> dict[str, InstanceType]:
    types: list[InstanceType] = []
    for family, sizes, gpu, arch in (("g4dn", _G4DN, _T4, "x86_64"), ("g5", _G5, _A10G, "x86_64"),
                                     ("g5g", _G5G, _T4G, "arm64"), ("g6", _G5, _L4, "x86_64"),
                                     ("g6e", _G6E, _L40S, "x86_64")):
        for size, cpu, mem, n in sizes:
            types.append(InstanceType(f"{family}.{size}", arch, cpu, mem * 1024, gpu, n))
    for size, cpu, mem, n in _P3:
        types.append(InstanceType(f"p3.{size}", "x86_64", cpu, mem * 1024, _V100, n, "xen"))
    types.append(InstanceType("p4d.24xlarge", "x86_64", 96, 1152 * 1024, _A100, 8))
    types.append(InstanceType("p5.4xlarge", "x86_64", 16, 256 * 1024, _H100, 1))
    types.append(InstanceType("p5.48xlarge", "x86_64", 192, 2048 * 1024, _H100, 8))
    for family, sizes, arch in (("t3", _T3, "x86_64"), ("m5", _M5, "x86_64"),
                                ("c7g", _C7G, "arm64")):
        for size, cpu, mem in sizes:
            types.append(InstanceType(f"{family}.{size}", arch, cpu, int(mem * 1024)))
    for t in types:
        t.efa = t.name in EFA_TYPES
    return {t.name: t for t in types}


INSTANCE_TYPES: dict[str, InstanceType] = _build_types()

# Types (globs) that a fresh emulator does not offer in some AZs, like real us-east-1e.
DEFAULT_UNSUPPORTED: dict[str, list[str]] = {
    "us-east-1e": ["g5.*", "g5g.*", "g6.*", "g6e.*", "p4d.*", "p5.*", "c7g.*"],
    "us-east-1f": ["p5.*", "p4d.*"],
    "us-west-2d": ["p3.*"],
}

CANONICAL = "099720109477"
AMAZON = "137112412989"
DLAMI_OWNER = "898082745236"


@dataclass
class Image:
    key: str                 # stable short key, used to derive per-region ids
    name: str
    owner: str
    arch: str
    root_device: str
    root_size_gib: int
    creation: str
    description: str
    default_user: str
    volume_type: str = "gp3"
    alias: str | None = None
    ssm_names: list[str] = field(default_factory=list)

    def image_id(self, region: str) -> str:
        return "ami-" + hashlib.sha256(f"{region}/{self.key}".encode()).hexdigest()[:17]

    def snapshot_id(self, region: str) -> str:
        return "snap-" + hashlib.sha256(f"snap/{region}/{self.key}".encode()).hexdigest()[:17]


_UBU = "/aws/service/canonical/ubuntu/server"
_DL = "/aws/service/deeplearning/ami"
_DL_UBU = "Deep Learning Base OSS Nvidia Driver GPU AMI"


def _images() -> list[Image]:
    imgs = []
    for arch, deb in (("x86_64", "amd64"), ("arm64", "arm64")):
        imgs += [
            Image(f"noble-{deb}", f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{deb}-server-20261015",
                  CANONICAL, arch, "/dev/sda1", 8, "2026-10-15T09:12:41.000Z",
                  f"Canonical, Ubuntu, 24.04, {deb} noble image", "ubuntu",
                  ssm_names=[f"{_UBU}/24.04/stable/current/{deb}/hvm/ebs-gp3/ami-id"]),
            Image(f"noble-old-{deb}", f"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-{deb}-server-20260601",
                  CANONICAL, arch, "/dev/sda1", 8, "2026-06-01T08:00:00.000Z",
                  f"Canonical, Ubuntu, 24.04, {deb} noble image (older build)", "ubuntu"),
            Image(f"jammy-{deb}", f"ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-{deb}-server-20261010",
                  CANONICAL, arch, "/dev/sda1", 8, "2026-10-10T07:30:00.000Z",
                  f"Canonical, Ubuntu, 22.04, {deb} jammy image", "ubuntu", volume_type="gp2",
                  ssm_names=[f"{_UBU}/22.04/stable/current/{deb}/hvm/ebs-gp2/ami-id",
                             f"{_UBU}/22.04/stable/current/{deb}/hvm/ebs-gp3/ami-id"]),
            Image(f"dlami-u2204-{deb}", f"{_DL_UBU} (Ubuntu 22.04) 20261012", "amazon", arch,
                  "/dev/sda1", 75, "2026-10-12T11:00:00.000Z",
                  f"{_DL_UBU} (Ubuntu 22.04), {arch}", "ubuntu",
                  ssm_names=[f"{_DL}/{arch}/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"]),
            Image(f"dlami-u2404-{deb}", f"{_DL_UBU} (Ubuntu 24.04) 20261012", "amazon", arch,
                  "/dev/sda1", 75, "2026-10-12T11:00:00.000Z",
                  f"{_DL_UBU} (Ubuntu 24.04), {arch}", "ubuntu",
                  ssm_names=[f"{_DL}/{arch}/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"]),
            Image(f"dlami-al2023-{deb}",
                  "Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023) 20261012",
                  "amazon", arch, "/dev/xvda", 75, "2026-10-12T11:00:00.000Z",
                  f"{_DL_UBU} (Amazon Linux 2023), {arch}", "ec2-user",
                  ssm_names=[f"{_DL}/{arch}/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"]),
            Image(f"al2023-{deb}", f"al2023-ami-2023.9.20261014.0-kernel-6.12-{arch}", "amazon",
                  arch, "/dev/xvda", 8, "2026-10-14T10:00:00.000Z",
                  f"Amazon Linux 2023 AMI, {arch}", "ec2-user",
                  ssm_names=[f"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"]),
        ]
    for img in imgs:
        if img.owner == "amazon":
            img.alias = "amazon"
            img.owner = DLAMI_OWNER if img.key.startswith("dlami") else AMAZON
    return imgs


IMAGES: list[Image] = _images()


def image_by_id(region: str, image_id: str) -> Image | None:
    for img in IMAGES:
        if img.image_id(region) == image_id:
            return img
    return None


def ssm_parameter(region: str, name: str) -> Image | None:
    for img in IMAGES:
        if name in img.ssm_names:
            return img
    return None
