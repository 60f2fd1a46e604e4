"""Sizes, regions and images the emulator serves (from the facts sheet's tables: ../shared/spec
digitalocean-api.md sections 3, 4 and 8). Plain data; the live API is the authority in reality."""
from __future__ import annotations

REGIONS = {
    "nyc1": "New York 1", "nyc2": "New York 2", "nyc3": "New York 3", "sfo3": "San Francisco 3",
    "ams3": "Amsterdam 3", "sgp1": "Singapore 1", "lon1": "London 1", "fra1": "Frankfurt 1",
    "tor1": "Toronto 1", "blr1": "Bangalore 1", "syd1": "Sydney 1", "atl1": "Atlanta 1",
    "ric1": "Richmond 1",
}
CPU_REGIONS = ["nyc1", "nyc3", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1",
               "atl1"]
NVIDIA_REGIONS = ["tor1", "nyc2", "ams3", "ric1"]
AMD_REGIONS = ["atl1", "nyc1"]


def _size(slug, description, vcpus, memory, disk, hourly, monthly, regions, gpu=None):
    size = {"slug": slug, "description": description, "vcpus": vcpus, "memory": memory,
            "disk": disk, "transfer": 15.0 if gpu else 1.0, "price_hourly": hourly,
            "price_monthly": monthly, "regions": list(regions), "available": True,
            "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}]}
    if gpu:
        count, model, vram = gpu
        size["gpu_info"] = {"count": count, "model": model, "vram": {"amount": vram, "unit": "gib"}}
    return size


SIZES = [
    _size("s-1vcpu-1gb", "Basic", 1, 1024, 25, 0.00893, 6.0, CPU_REGIONS),
    _size("s-2vcpu-2gb", "Basic", 2, 2048, 60, 0.02679, 18.0, CPU_REGIONS),
    _size("s-4vcpu-8gb", "Basic", 4, 8192, 160, 0.07143, 48.0, CPU_REGIONS),
    _size("g-2vcpu-8gb", "General Purpose", 2, 8192, 25, 0.09375, 63.0, CPU_REGIONS),
    _size("gpu-4000adax1-20gb", "RTX 4000 Ada GPU Droplet - 1X", 8, 32768, 500, 0.76, 565.44,
          NVIDIA_REGIONS, (1, "nvidia_rtx4000_ada", 20)),
    _size("gpu-6000adax1-48gb", "RTX 6000 Ada GPU Droplet - 1X", 8, 65536, 500, 1.57, 1168.08,
          NVIDIA_REGIONS, (1, "nvidia_rtx6000_ada", 48)),
    _size("gpu-l40sx1-48gb", "L40S GPU Droplet - 1X", 8, 65536, 500, 1.57, 1168.08,
          NVIDIA_REGIONS, (1, "nvidia_l40s", 48)),
    _size("gpu-mi300x1-192gb", "AMD MI300X - 1X", 20, 245760, 720, 1.99, 1480.56, AMD_REGIONS,
          (1, "amd_mi300x", 192)),
    _size("gpu-h100x1-80gb", "H100 GPU - 1X", 20, 245760, 720, 3.39, 2522.16, NVIDIA_REGIONS,
          (1, "nvidia_h100", 80)),
    _size("gpu-h200x1-141gb", "Nvidia H200 - 1X", 24, 245760, 720, 3.44, 2559.36, NVIDIA_REGIONS,
          (1, "nvidia_h200", 141)),
    _size("gpu-mi300x8-1536gb", "AMD MI300X - 8X", 160, 1966080, 2046, 15.92, 11844.48,
          AMD_REGIONS, (8, "amd_mi300x", 1536)),
    _size("gpu-h100x8-640gb", "H100 GPU - 8X", 160, 1966080, 2046, 23.92, 17796.48,
          ["nyc1", "tor1"], (8, "nvidia_h100", 640)),
    _size("gpu-h200x8-1128gb", "Nvidia H200 - 8X", 192, 1966080, 2046, 27.52, 20474.88,
          ["nyc2"], (8, "nvidia_h200", 1128)),
]


def _image(image_id, slug, name, distribution, min_disk, description):
    return {"id": image_id, "name": name, "type": "base", "distribution": distribution,
            "slug": slug, "public": True, "regions": sorted(REGIONS), "created_at":
            "2026-06-01T00:00:00Z", "min_disk_size": min_disk, "size_gigabytes": 2.5,
            "description": description, "tags": [], "status": "available", "error_message": ""}


IMAGES = [
    _image(170001001, "ubuntu-24-04-x64", "24.04 (LTS) x64", "Ubuntu", 7, "Ubuntu 24.04"),
    _image(170001002, "ubuntu-22-04-x64", "22.04 (LTS) x64", "Ubuntu", 7, "Ubuntu 22.04"),
    _image(170001003, "debian-12-x64", "12 x64", "Debian", 7, "Debian 12"),
    _image(170002001, "gpu-h100x1-base", "NVIDIA AI/ML Ready", "Ubuntu", 30,
           "AI/ML Ready H100x1"),
    _image(170002002, "gpu-h100x8-base", "NVIDIA AI/ML Ready with NVLink", "Ubuntu", 30,
           "AI/ML Ready H100x8"),
    _image(170002003, "gpu-amd-base", "AMD AI/ML Ready", "Ubuntu", 30, "AMD AI/ML Ready"),
]


def region_object(slug: str) -> dict:
    return {"slug": slug, "name": REGIONS.get(slug, slug), "available": True,
            "features": ["backups", "ipv6", "metadata", "install_agent", "storage",
                         "image_transfer", "management_networking"],
            "sizes": [s["slug"] for s in SIZES if slug in s["regions"]]}
