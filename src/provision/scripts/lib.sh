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
  if [ "${1:-}" = update ]; then
    shift
    gm_apt_update "$@"
    return
  fi
  gm_apt_run "$@"
}
gm_apt_run() {
  $SUDO env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a apt-get -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    -o DPkg::Lock::Timeout="$GM_LOCK_TIMEOUT" "$@"
}
# apt-get update waits for the lists lock itself (DPkg::Lock::Timeout covers only dpkg's lock), and
# fails when a repository could not be fetched (apt-get update alone exits 0 then, and the real
# cause would surface later as "Unable to locate package").
gm_apt_update() {
  local out rc deadline failed said=""
  out=$(mktemp)
  deadline=$(($(date +%s) + GM_LOCK_TIMEOUT))
  while :; do
    rc=0
    gm_apt_run update --error-on=any "$@" 2>&1 | tee "$out" || rc=$?
    if [ "$rc" -ne 0 ] && grep -q 'Could not get lock' "$out" && [ "$(date +%s)" -lt "$deadline" ]; then
      if [ -z "$said" ]; then echo "waiting for the apt lock (held by another process)"; said=1; fi
      sleep "${GM_POLL_SECONDS:-2}"
      continue
    fi
    break
  done
  failed=$(sed -n 's/^Err:[0-9]* \([^ ]*\) .*/\1/p' "$out" | sort -u | tr '\n' ' ')
  rm -f "$out"
  if [ -n "$failed" ]; then
    gm_fail "apt-get update could not fetch from ${failed% }" \
      "check that the host reaches these repositories: behind a proxy set Acquire::http::Proxy in /etc/apt/apt.conf.d/, or point them at a mirror the host can reach"
  fi
  return "$rc"
}
# Installs; when apt refuses to change packages held with apt-mark hold, fails naming them.
gm_apt_install() {
  local out rc=0 held
  out=$(mktemp)
  gm_apt_run --no-install-recommends install "$@" 2>&1 | tee "$out" || rc=$?
  if [ "$rc" -ne 0 ] && grep -qi 'held' "$out"; then
    held=$(sed -n '/^The following held packages will be changed:/,/^[^ ]/s/^  *//p' "$out" | tr '\n' ' ')
    if [ -z "${held// /}" ]; then held=$(apt-mark showhold 2>/dev/null | tr '\n' ' '); fi
    held=${held%"${held##*[! ]}"}
    if [ -n "$held" ]; then
      rm -f "$out"
      gm_fail "apt will not change packages held with apt-mark hold: $held" \
        "release them with \"sudo apt-mark unhold $held\" and provision again"
    fi
  fi
  rm -f "$out"
  return "$rc"
}
gm_apt_available() { apt-cache show "$1" >/dev/null 2>&1; }
# Installed, held or not ("hold ok installed" is installed too).
gm_deb_installed() {
  # shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not ours.
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' ok installed$'
}
# gm_need COMMAND...: installs the packages that provide the commands a step is about to use
# (minimal images lack gpg, even curl; curl comes with the CA certificates https needs).
gm_need() {
  local c missing=()
  for c in "$@"; do
    gm_have "$c" && continue
    case "$c" in
      gpg) missing+=(gnupg) ;;
      curl) missing+=(curl ca-certificates) ;;
      *) missing+=("$c") ;;
    esac
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "installing what this step needs: ${missing[*]}"
  if gm_have apt-get; then
    gm_apt update
    gm_apt_install "${missing[@]}"
  else
    gm_dnf install "${missing[@]}"
  fi
}
# Debian's NVIDIA packages need the contrib component. Adds it next to main in Debian's own
# sources (installer and cloud-image layouts: sources.list, debian.sources), wherever a stanza or
# line has main but not contrib; comments are left alone.
gm_debian_contrib() {
  local f
  for f in "$R/etc/apt/sources.list" "$R/etc/apt/sources.list.d/debian.sources"; do
    [ -f "$f" ] || continue
    $SUDO sed -i -E \
      -e '/^[[:space:]]*Components:/{/[[:space:]]contrib([[:space:]]|$)/!s/([[:space:]])main([[:space:]]|$)/\1main contrib\2/}' \
      -e '/^[[:space:]]*deb(-src)?[[:space:]]/{/[[:space:]]contrib([[:space:]]|$)/!s/([[:space:]])main([[:space:]]|$)/\1main contrib\2/}' \
      "$f"
  done
}
gm_rpm_installed() { rpm -q "$1" >/dev/null 2>&1; }
gm_dnf() { $SUDO dnf -y -q "$@"; }

# NVIDIA's CUDA repository via cuda-keyring (Debian and the Ubuntu DKMS fallback).
# gm_cuda_keyring DISTRO (ubuntu2204, ubuntu2404, debian12)
gm_cuda_keyring() {
  local arch tmp
  if gm_deb_installed cuda-keyring; then return 0; fi
  gm_need curl
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
# enabled, disabled, unsupported (no EFI) or unknown: mokutil when the host has it, else the
# SecureBoot EFI variable itself (its fifth byte, after 4 bytes of attributes, is 1 when on).
gm_secure_boot_state() {
  local text var="$R/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e98c7f5feee7"
  if gm_have mokutil; then
    text=$(mokutil --sb-state 2>&1 || true)
    case "$text" in
      *"SecureBoot enabled"*) echo enabled; return ;;
      *"SecureBoot disabled"*) echo disabled; return ;;
      *"not supported"*) echo unsupported; return ;;
    esac
  fi
  if [ ! -d "$R/sys/firmware/efi" ]; then
    echo unsupported
  elif [ -r "$var" ]; then
    case "$(od -An -j4 -N1 -tu1 "$var" 2>/dev/null | tr -d ' ')" in
      1) echo enabled ;;
      0) echo disabled ;;
      *) echo unknown ;;
    esac
  else
    echo unknown
  fi
}
gm_secure_boot_on() { [ "$(gm_secure_boot_state)" = enabled ]; }
# A reboot would bring up another kernel or libraries: Ubuntu's reboot-required flag, dnf's verdict,
# or (Debian has neither without unattended-upgrades) a newer kernel of the running flavour installed.
gm_reboot_pending() {
  local running flavour newest f v
  if [ -e "$R/var/run/reboot-required" ]; then return 0; fi
  if gm_have dnf; then
    if dnf needs-restarting -r >/dev/null 2>&1; then return 1; fi
    return 0
  fi
  running=$(uname -r)
  flavour=${running#"${running%%-[a-z]*}"} # 6.1.0-28-cloud-amd64 -> -cloud-amd64
  newest=$(for f in "$R"/boot/vmlinuz-*"$flavour"; do
    v=${f##*/vmlinuz-}
    v=${v%"$flavour"}
    if [ -e "$f" ] && [[ "$v" =~ ^[0-9][0-9.]*(-[0-9]+)?$ ]]; then echo "$v$flavour"; fi
  done | sort -V | tail -n1)
  [ -n "$newest" ] && [ "$newest" != "$running" ] &&
    [ "$(printf '%s\n%s\n' "$running" "$newest" | sort -V | tail -n1)" = "$newest" ]
}

# --- every step's output also goes to the host's log ---
$SUDO mkdir -p "$(dirname "$R$GM_LOG_FILE")"
exec > >($SUDO tee -a "$R$GM_LOG_FILE") 2>&1
echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) step $GM_STEP ==="
