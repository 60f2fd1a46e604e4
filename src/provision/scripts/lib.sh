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
# Enables a unit where a package installed it (nvidia-persistenced is not in every package set).
gm_enable_if_present() {
  if systemctl cat "$1.service" >/dev/null 2>&1; then
    $SUDO systemctl enable "$1"
  else
    gm_note "no $1 service on this host; nothing to enable"
  fi
}

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
# APT::Status-Fd=1 adds apt's machine-readable progress ("dlstatus:", "pmstatus:" lines), which the
# provisioner turns into bytes, rate and time left (provision/apt_progress.h).
gm_apt_run() {
  $SUDO env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l apt-get -y -q -o APT::Status-Fd=1 \
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

# NVIDIA's CUDA repository via cuda-keyring (Debian and the Ubuntu DKMS fallback), fetched from
# $GM_CUDA_REPO (NVIDIA's or a mirror, which then stands in for NVIDIA's in the keyring's sources).
# The package lists are refreshed on every call, so a run after one that failed between the
# keyring and the update still finds the repository's packages.
# gm_cuda_keyring DISTRO (ubuntu2204, ubuntu2404, debian12, debian13)
gm_cuda_keyring() {
  local arch tmp f
  arch=$(uname -m)
  if [ "$arch" = aarch64 ]; then arch=sbsa; fi
  if ! gm_deb_installed cuda-keyring; then
    gm_need curl
    tmp=$(mktemp -d)
    curl -fsSL -o "$tmp/cuda-keyring.deb" "$GM_CUDA_REPO/$1/$arch/cuda-keyring_1.1-1_all.deb"
    $SUDO dpkg -i "$tmp/cuda-keyring.deb"
    rm -rf "$tmp"
  fi
  for f in "$R"/etc/apt/sources.list.d/cuda-*.list; do
    if [ -f "$f" ]; then $SUDO sed -i "s|$GM_CUDA_UPSTREAM|$GM_CUDA_REPO|g" "$f"; fi
  done
  gm_apt update
}
# The kernel meta-package the running kernel follows, without "linux-image-": "aws", "generic",
# "generic-hwe-22.04", "aws-lts-22.04" (Ubuntu), "cloud-amd64" (Debian). Its linux-headers-<it>
# (and Ubuntu's linux-modules-nvidia-...-<it>) bring every later kernel's packages along.
gm_kernel_meta() {
  local flavour p
  flavour=$(uname -r | sed -E 's/^[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9]+|\+deb[0-9]+)?-//')
  # shellcheck disable=SC2016 # ${Status} is dpkg-query's format, not ours.
  for p in $(dpkg-query -W -f='${Status} ${Package}\n' "linux-image-$flavour-*" 2>/dev/null |
    awk '$3 == "installed" { print $4 }'); do
    case "${p#linux-image-}" in
      "$flavour"-hwe-* | "$flavour"-lts-*)
        echo "${p#linux-image-}"
        return 0 ;;
    esac
  done
  echo "$flavour"
}
# GM_HEADERS=(...): the packages DKMS needs to build for this kernel and every later one, the
# headers meta-package and the running kernel's headers. Where those are gone from the archive
# (Debian keeps only the current ABI), the kernel the meta-package follows joins them and the host
# is marked for the reboot into it.
gm_dkms_headers() {
  local kernel meta
  kernel=$(uname -r)
  meta=$(gm_kernel_meta)
  GM_HEADERS=()
  if gm_apt_available "linux-headers-$kernel"; then
    if gm_apt_available "linux-headers-$meta"; then GM_HEADERS+=("linux-headers-$meta"); fi
    GM_HEADERS+=("linux-headers-$kernel")
  elif gm_apt_available "linux-headers-$meta" && gm_apt_available "linux-image-$meta"; then
    gm_note "the headers of the running kernel $kernel are no longer in the archive: installing the current kernel (linux-image-$meta) and rebooting into it"
    GM_HEADERS+=("linux-headers-$meta" "linux-image-$meta")
    echo "*** System restart required ***" | gm_write /var/run/reboot-required 0644
  else
    gm_fail "no kernel headers for $kernel in the configured repositories" \
      "upgrade the kernel (apt-get install linux-image-$meta), reboot, then provision again"
  fi
}

# Wires the nvidia runtime into Docker's daemon.json (the file at $1) and restarts Docker only
# when that changed the file or the running daemon lacks the runtime: a restart stops every
# running container.
gm_docker_runtime_configure() {
  local before
  before=$(cat "$1" 2>/dev/null || true)
  $SUDO nvidia-ctk runtime configure --runtime=docker --config="$1"
  if [ "$before" != "$(cat "$1" 2>/dev/null || true)" ]; then
    gm_note "restarting docker: the nvidia runtime changed its configuration (running containers stop)"
    $SUDO systemctl restart docker
  elif ! $SUDO docker info 2>/dev/null | grep -q 'Runtimes:.*nvidia'; then
    gm_note "restarting docker: it runs without the nvidia runtime its configuration names"
    $SUDO systemctl restart docker
  fi
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
# tee -p: when the SSH connection drops, tee keeps writing the log (and the step keeps running)
# instead of dying of SIGPIPE and taking the step with it.
exec > >($SUDO tee -a -p "$R$GM_LOG_FILE") 2>&1
echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) step $GM_STEP ==="
