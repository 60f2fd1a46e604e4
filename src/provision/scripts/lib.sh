#!/usr/bin/env bash
# Shared prelude of every provisioning step. The provisioner sends, on the stdin of `bash -s`:
#   { GM_* parameters; this file; the step's script; } </dev/null
# so the whole text is parsed before anything runs and no command can eat the rest of the script.
# Every host path goes through $R (empty on a real host) so a simulated host can point it at a fake
# root; nothing here may name an absolute path without it.
set -euo pipefail

R="${GM_SYSROOT:-}"
GM_STEP="${GM_STEP:-step}"
GM_LOG_FILE="${GM_LOG_FILE:-/var/log/gpumachine/provision.log}"
GM_LOCK_TIMEOUT="${GM_LOCK_TIMEOUT:-600}"
export LC_ALL=C

# sudo only when we are not root; -n never prompts (there is no terminal to answer on).
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
else
  SUDO="sudo -n"
fi
GM_USER="${GM_USER:-$(id -un)}"

# --- markers the provisioner reads from stdout ("gm: <word> <text>") ---
gm_note() { echo "gm: note $*"; }
gm_hint() { echo "gm: hint $*"; }
gm_fact() { echo "gm: fact $1=$2"; }
# The step's check passed: nothing to apply.
gm_done() {
  echo "gm: already done${1:+ ($1)}"
  exit 0
}
gm_applied() { echo "gm: applied${1:+ ($1)}"; }
# gm_fail MESSAGE [HINT]: the hint is what the user should do about it.
gm_fail() {
  if [ -n "${2:-}" ]; then gm_hint "$2"; fi
  echo "error: $1" >&2
  exit 1
}
gm_have() { command -v "$1" >/dev/null 2>&1; }

# --- files under the (possibly simulated) root ---
# gm_write PATH MODE: stdin becomes the content of $R/PATH.
gm_write() {
  $SUDO mkdir -p "$(dirname "$R$1")"
  $SUDO tee "$R$1" >/dev/null
  $SUDO chmod "$2" "$R$1"
}

# --- package managers ---
gm_apt() {
  $SUDO env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    -o DPkg::Lock::Timeout="$GM_LOCK_TIMEOUT" "$@"
}
gm_apt_install() { gm_apt --no-install-recommends install "$@"; }
gm_apt_available() { apt-cache show "$1" >/dev/null 2>&1; }
gm_deb_installed() {
  # shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not ours.
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}
gm_rpm_installed() { rpm -q "$1" >/dev/null 2>&1; }
gm_dnf() { $SUDO dnf -y -q "$@"; }

# NVIDIA's CUDA repository via cuda-keyring (Debian and the Ubuntu DKMS fallback).
# gm_cuda_keyring DISTRO (ubuntu2204, ubuntu2404, debian12)
gm_cuda_keyring() {
  local arch tmp
  if gm_deb_installed cuda-keyring; then return 0; fi
  arch=$(uname -m)
  if [ "$arch" = aarch64 ]; then arch=sbsa; fi
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/cuda-keyring.deb" \
    "https://developer.download.nvidia.com/compute/cuda/repos/$1/$arch/cuda-keyring_1.1-1_all.deb"
  $SUDO dpkg -i "$tmp/cuda-keyring.deb"
  rm -rf "$tmp"
  gm_apt update
}

# --- driver state ---
gm_loaded_version() { cat "$R/sys/module/nvidia/version" 2>/dev/null || true; }
# The installed userspace version, from nvidia-smi when it answers, else from libnvidia-ml's file
# name (it still tells the version when the loaded module does not match and NVML refuses).
gm_userspace_version() {
  local v f
  v=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null || true)
  if [ -n "$v" ] && [[ "$v" != *[!0-9.$'\n']* ]]; then
    echo "${v%%$'\n'*}"
    return 0
  fi
  for f in "$R"/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.*.* "$R"/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.*.* \
    "$R"/usr/lib64/libnvidia-ml.so.*.*; do
    if [ -e "$f" ]; then
      echo "${f##*/libnvidia-ml.so.}"
      return 0
    fi
  done
}
# The loaded module's EnableGpuFirmware parameter (0: GSP firmware off); empty when not loaded.
gm_gsp_param() {
  sed -n 's/^EnableGpuFirmware: *//p' "$R/proc/driver/nvidia/params" 2>/dev/null || true
}
# GM_NO_GSP=1: load the (proprietary) module with GSP firmware off from the next load on, the
# workaround for GSP hangs on g4dn/g5/g5g; otherwise remove our option if an earlier run set it.
gm_gsp_option() {
  local conf=/etc/modprobe.d/gpumachine-gsp.conf
  if [ "${GM_NO_GSP:-0}" = 1 ]; then
    echo 'options nvidia NVreg_EnableGpuFirmware=0' | gm_write "$conf" 0644
  elif [ -e "$R$conf" ]; then
    $SUDO rm -f "$R$conf"
  fi
}
gm_nouveau_loaded() { grep -q '^nouveau ' "$R/proc/modules" 2>/dev/null; }
gm_secure_boot_on() { mokutil --sb-state 2>/dev/null | grep -qi 'SecureBoot enabled'; }

# --- every step's output also goes to the host's log ---
$SUDO mkdir -p "$(dirname "$R$GM_LOG_FILE")"
exec > >($SUDO tee -a "$R$GM_LOG_FILE") 2>&1
echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) step $GM_STEP ==="
