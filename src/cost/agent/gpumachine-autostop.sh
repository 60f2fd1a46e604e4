#!/usr/bin/env bash
# gpumachine autostop agent: runs on the host once a minute (systemd timer) and powers the host
# off when it has been idle for the configured duration, or when it has run longer than the
# lifetime cap. The instance's InstanceInitiatedShutdownBehavior turns the power-off into an EC2
# stop or terminate, so the host needs no IAM role and no AWS credentials.
#
#   gpumachine-autostop.sh [--check]     one check (what the timer runs); logs the decision
#   gpumachine-autostop.sh --status      JSON: armed, idle so far, seconds until it fires (no check)
#   gpumachine-autostop.sh --arm         restart both clocks now (after install or a new setting)
#   gpumachine-autostop.sh --new-launch  restart the lifetime clock (the instance was started again)
#   gpumachine-autostop.sh --install     write the systemd units, enable the timer, arm
#   gpumachine-autostop.sh --uninstall   disable the timer and remove the units (config is kept)
#   gpumachine-autostop.sh --print-units print the .service and .timer units
#
# Activity (any one resets the idle clock): an established TCP connection to sshd (shells, scp,
# `ssh -N -L` tunnels, VS Code Remote-SSH), a GPU busier than GPU_THRESHOLD percent, a running
# process matching PROCESSES, a process matching BUSY_PROCESSES that used CPU since the last check
# (a Jupyter kernel running cells, not one sitting open), a logged-in user (`who`).
#
# Reboots: the timer is enabled and the state lives under /var/lib, so a reboot does not disarm
# it. A boot counts as activity (the idle clock restarts at boot time: whoever rebooted is likely
# about to log in). The lifetime clock keeps running across a reboot; it restarts when the boot
# follows a power-off this agent made, or a downtime longer than NEW_LAUNCH_GAP (an EC2 stop and
# start, as opposed to a reboot).
#
# Every input can be redirected for tests (recorded inputs) and for hosts that differ: see the
# AUTOSTOP_* variables below. Nothing here needs more than bash, coreutils and awk.
set -euo pipefail
export LC_ALL=C

CONFIG=${AUTOSTOP_CONFIG:-/etc/gpumachine/autostop.conf}

# --- configuration (defaults, then the file; only known keys are read, the file is not sourced)
ENABLED=1
IDLE_SECONDS=1800            # 0: no idle stop (lifetime cap only)
MAX_LIFETIME_SECONDS=0       # 0: no cap
ACTION=stop                  # informational: the instance's shutdown behaviour decides
GPU_THRESHOLD=10             # percent; a GPU at or above it is activity
SSH_PORTS=22                 # sshd ports (space separated)
SSH_LOCAL_ADDRESSES=         # only connections to these local addresses count; empty: any
PROCESSES="torchrun deepspeed"                # extended regexes on the command line: presence
BUSY_PROCESSES="ipykernel jupyter python"     # ... activity only when they used CPU since last check
BUSY_MIN_CPU_SECONDS=2       # CPU seconds since the last check that make a BUSY_PROCESSES match busy
NEW_LAUNCH_GAP=300           # seconds down between two boots that mean stop/start, not reboot
STATE_FILE=/var/lib/gpumachine/autostop.state
LOG_FILE=/var/log/gpumachine/autostop.log
LOG_MAX_BYTES=1048576        # the log rotates once (to .1) past this size
POWEROFF_CMD="systemctl poweroff"

read_config() {
  local key value
  [ -r "$CONFIG" ] || return 0
  while IFS='=' read -r key value || [ -n "$key" ]; do
    case "$key" in '' | '#'*) continue ;; esac
    value=${value%\"}
    value=${value#\"}
    case "$key" in
      ENABLED) ENABLED=$value ;;
      IDLE_SECONDS) IDLE_SECONDS=$value ;;
      MAX_LIFETIME_SECONDS) MAX_LIFETIME_SECONDS=$value ;;
      ACTION) ACTION=$value ;;
      GPU_THRESHOLD) GPU_THRESHOLD=$value ;;
      SSH_PORTS) SSH_PORTS=$value ;;
      SSH_LOCAL_ADDRESSES) SSH_LOCAL_ADDRESSES=$value ;;
      PROCESSES) PROCESSES=$value ;;
      BUSY_PROCESSES) BUSY_PROCESSES=$value ;;
      BUSY_MIN_CPU_SECONDS) BUSY_MIN_CPU_SECONDS=$value ;;
      NEW_LAUNCH_GAP) NEW_LAUNCH_GAP=$value ;;
      STATE_FILE) STATE_FILE=$value ;;
      LOG_FILE) LOG_FILE=$value ;;
      LOG_MAX_BYTES) LOG_MAX_BYTES=$value ;;
      POWEROFF_CMD) POWEROFF_CMD=$value ;;
      *) ;;  # unknown keys are ignored so an older agent reads a newer config
    esac
  done <"$CONFIG"
}
read_config
# AUTOSTOP_<KEY> in the environment wins over the file (simulated hosts in tests; one-off runs).
for key in ENABLED IDLE_SECONDS MAX_LIFETIME_SECONDS GPU_THRESHOLD SSH_PORTS SSH_LOCAL_ADDRESSES \
  PROCESSES BUSY_PROCESSES BUSY_MIN_CPU_SECONDS NEW_LAUNCH_GAP POWEROFF_CMD; do
  env_key=AUTOSTOP_$key
  if [ -n "${!env_key+set}" ]; then printf -v "$key" '%s' "${!env_key}"; fi
done
for n in "$IDLE_SECONDS" "$MAX_LIFETIME_SECONDS" "$GPU_THRESHOLD" "$BUSY_MIN_CPU_SECONDS" "$NEW_LAUNCH_GAP"; do
  case "$n" in '' | *[!0-9]*) echo "gpumachine-autostop: bad number '$n' in $CONFIG" >&2; exit 2 ;; esac
done

# --- inputs (each overridable so tests can feed recorded data)
PROC_NET_TCP=${AUTOSTOP_PROC_NET_TCP:-/proc/net/tcp}
PROC_NET_TCP6=${AUTOSTOP_PROC_NET_TCP6:-/proc/net/tcp6}
UPTIME_FILE=${AUTOSTOP_UPTIME_FILE:-/proc/uptime}
BOOT_ID_FILE=${AUTOSTOP_BOOT_ID_FILE:-/proc/sys/kernel/random/boot_id}
NVIDIA_SMI=${AUTOSTOP_NVIDIA_SMI:-nvidia-smi}
PS_CMD=${AUTOSTOP_PS_CMD:-ps -eo pid=,time=,args=}
WHO_CMD=${AUTOSTOP_WHO_CMD:-who}
DOCKER_CMD=${AUTOSTOP_DOCKER:-docker}
SYSTEMD_DIR=${AUTOSTOP_SYSTEMD_DIR:-/etc/systemd/system}
SYSTEMCTL=${AUTOSTOP_SYSTEMCTL:-systemctl}
SELF_PATH=${AUTOSTOP_SELF:-/usr/local/lib/gpumachine/gpumachine-autostop.sh}

export TZ=UTC
NOW=${AUTOSTOP_NOW:-${EPOCHSECONDS:-$(date +%s)}}
uptime_seconds() {
  local up
  read -r up _ <"$UPTIME_FILE"
  echo "${up%%.*}"
}

log() {
  [ -d "${LOG_FILE%/*}" ] || mkdir -p "${LOG_FILE%/*}"
  if [ -f "$LOG_FILE" ] && [ "$(wc -c <"$LOG_FILE")" -gt "$LOG_MAX_BYTES" ]; then
    mv -f "$LOG_FILE" "$LOG_FILE.1"
  fi
  printf '%(%Y-%m-%dT%H:%M:%SZ)T %s\n' "$NOW" "$*" >>"$LOG_FILE"
}

human() {
  local s=$1
  if [ "$s" -ge 3600 ]; then
    printf '%dh%02dm' $((s / 3600)) $((s % 3600 / 60))
  elif [ "$s" -ge 60 ]; then
    printf '%dm%02ds' $((s / 60)) $((s % 60))
  else printf '%ds' "$s"; fi
}

# --- state: KEY=VALUE lines, replaced atomically
S_BOOT_ID=""
S_BOOT_TIME=0
S_LAST_CHECK=0
S_LAST_ACTIVITY=0
S_LIFETIME_START=0
S_FIRED=0
S_LAST_REASON=""
S_PROC_CPU=""
load_state() {
  local key value
  [ -r "$STATE_FILE" ] || return 0
  while IFS='=' read -r key value || [ -n "$key" ]; do
    case "$key" in
      boot_id) S_BOOT_ID=$value ;;
      boot_time) S_BOOT_TIME=$value ;;
      last_check) S_LAST_CHECK=$value ;;
      last_activity) S_LAST_ACTIVITY=$value ;;
      lifetime_start) S_LIFETIME_START=$value ;;
      fired) S_FIRED=$value ;;
      last_reason) S_LAST_REASON=$value ;;
      proc_cpu) S_PROC_CPU=$value ;;
      *) ;;
    esac
  done <"$STATE_FILE"
}
save_state() {
  [ -d "${STATE_FILE%/*}" ] || mkdir -p "${STATE_FILE%/*}"
  {
    echo "boot_id=$S_BOOT_ID"
    echo "boot_time=$S_BOOT_TIME"
    echo "last_check=$S_LAST_CHECK"
    echo "last_activity=$S_LAST_ACTIVITY"
    echo "lifetime_start=$S_LIFETIME_START"
    echo "fired=$S_FIRED"
    echo "last_reason=$S_LAST_REASON"
    echo "proc_cpu=$S_PROC_CPU"
  } >"$STATE_FILE.tmp"
  mv -f "$STATE_FILE.tmp" "$STATE_FILE"
}

# --- activity signals; each sets REASON and succeeds when active. They run in this shell (not in
# $(...)) so what they learn (GPU summary, CPU times) survives without running them twice.
REASON=""
ssh_activity() {
  # /proc/net/tcp{,6}: field 2 is local "ADDR:PORT" (hex), field 4 the state (01 = ESTABLISHED).
  # Read directly rather than through `ss` so it costs no process and needs no iproute2.
  local files=() f
  for f in "$PROC_NET_TCP" "$PROC_NET_TCP6"; do [ -r "$f" ] && files+=("$f"); done
  [ "${#files[@]}" -gt 0 ] || return 1
  local count
  count=$(awk -v ports="$SSH_PORTS" -v addrs="$SSH_LOCAL_ADDRESSES" '
    function hexport(p) { return sprintf("%04X", p + 0) }
    function h2(s) {  # two hex digits -> number (mawk has no strtonum)
      return (index("0123456789ABCDEF", toupper(substr(s, 1, 1))) - 1) * 16 + \
             index("0123456789ABCDEF", toupper(substr(s, 2, 1))) - 1
    }
    function v4(hex) {  # /proc/net/tcp stores IPv4 little-endian
      return h2(substr(hex, 7, 2)) "." h2(substr(hex, 5, 2)) "." h2(substr(hex, 3, 2)) "." h2(substr(hex, 1, 2))
    }
    BEGIN {
      n = split(ports, p, " "); for (i = 1; i <= n; i++) want[hexport(p[i])] = 1
      m = split(addrs, a, " "); for (i = 1; i <= m; i++) addr[a[i]] = 1
    }
    FNR == 1 { next }
    $4 == "01" {
      split($2, local, ":")
      if (!(local[2] in want)) next
      if (m > 0) {
        ip = local[1]
        if (length(ip) == 8) ip = v4(ip)
        else if (substr(ip, 1, 24) == "0000000000000000FFFF0000") ip = v4(substr(ip, 25, 8))
        if (!(ip in addr)) next
      }
      c++
    }
    END { print c + 0 }' "${files[@]}")
  if [ "$count" -gt 0 ]; then
    REASON="ssh: $count established connection(s) to sshd"
    return 0
  fi
  return 1
}

GPU_SUMMARY="no nvidia-smi"
gpu_activity() {
  local out max
  if ! out=$($NVIDIA_SMI --query-gpu=utilization.gpu --format=csv,noheader,nounits 2>/dev/null); then
    GPU_SUMMARY="nvidia-smi failed"
    return 1
  fi
  max=$(printf '%s\n' "$out" | awk '$1 ~ /^[0-9]+$/ { if ($1 + 0 > m) m = $1 + 0; n++ } END { if (n) print m + 0; else print "" }')
  if [ -z "$max" ]; then
    GPU_SUMMARY="no GPU readings"
    return 1
  fi
  GPU_SUMMARY="gpu max ${max}% < ${GPU_THRESHOLD}%"
  if [ "$max" -ge "$GPU_THRESHOLD" ]; then
    REASON="gpu: utilization ${max}% >= ${GPU_THRESHOLD}%"
    return 0
  fi
  return 1
}

# Sets NEW_PROC_CPU (pid:cpu-seconds of BUSY_PROCESSES matches) for the state file.
NEW_PROC_CPU=""
process_activity() {
  local table result
  [ -n "$PROCESSES$BUSY_PROCESSES" ] || return 1
  table=$($PS_CMD 2>/dev/null) || return 1
  result=$(printf '%s\n' "$table" | awk -v self="$$" -v present="$PROCESSES" -v busy="$BUSY_PROCESSES" \
    -v prev="$S_PROC_CPU" -v min="$BUSY_MIN_CPU_SECONDS" '
    function secs(t,   d, n, x) {  # ps TIME: [[dd-]hh:]mm:ss
      d = 0
      if (index(t, "-")) { d = substr(t, 1, index(t, "-") - 1); t = substr(t, index(t, "-") + 1) }
      n = split(t, x, ":")
      if (n == 3) return d * 86400 + x[1] * 3600 + x[2] * 60 + x[3]
      if (n == 2) return d * 86400 + x[1] * 60 + x[2]
      return t + 0
    }
    BEGIN {
      np = split(present, P, " "); nb = split(busy, B, " ")
      k = split(prev, pv, ","); for (i = 1; i <= k; i++) { split(pv[i], q, ":"); old[q[1]] = q[2] }
    }
    {
      pid = $1; cpu = secs($2); $1 = ""; $2 = ""; args = substr($0, 3)
      if (pid == self || args ~ /gpumachine-autostop/) next
      for (i = 1; i <= np; i++) if (args ~ P[i]) { if (!hit) hit = "process: " args " (pid " pid ")"; next }
      for (i = 1; i <= nb; i++) if (args ~ B[i]) {
        cpus = cpus (cpus ? "," : "") pid ":" cpu
        # A pid seen for the first time is only a baseline: its CPU time may be days old.
        used = (pid in old) ? cpu - old[pid] : 0
        if (used >= min && !hit) hit = "process: " args " (pid " pid ") used " used "s CPU"
        next
      }
    }
    END { print cpus; print hit }')
  NEW_PROC_CPU=$(printf '%s\n' "$result" | sed -n 1p)
  local hit
  hit=$(printf '%s\n' "$result" | sed -n 2p)
  if [ -n "$hit" ]; then
    REASON=$hit
    return 0
  fi
  return 1
}

job_activity() {
  # `gpumachine run` jobs: containers labelled gpumachine.job that are running (a finished one
  # stays for its log, and is not activity). No docker (or no daemon): no jobs.
  local ids count
  ids=$($DOCKER_CMD ps -q --filter label=gpumachine.job --filter status=running 2>/dev/null) || return 1
  count=$(printf '%s\n' "$ids" | awk 'NF { c++ } END { print c + 0 }')
  if [ "$count" -gt 0 ]; then
    REASON="jobs: $count running"
    return 0
  fi
  return 1
}

user_activity() {
  local users
  users=$($WHO_CMD 2>/dev/null | awk 'NF && !seen[$1]++ { printf "%s ", $1 }') || true
  if [ -n "${users// /}" ]; then
    REASON="users: logged in: ${users% }"
    return 0
  fi
  return 1
}

# --- the check
on_boot() {
  # First check of a boot: the idle clock restarts at boot; the lifetime clock restarts only for
  # a new launch (our own power-off, or a long downtime: EC2 stop/start).
  local up boot_time gap
  up=$(uptime_seconds)
  boot_time=$((NOW - up))
  gap=$((boot_time - S_LAST_CHECK))
  if [ "$S_LAST_CHECK" -eq 0 ] || [ "$S_LIFETIME_START" -eq 0 ]; then
    log "boot: first check (never armed); idle and lifetime clocks start at boot"
    S_LIFETIME_START=$boot_time
  elif [ "$S_FIRED" != 0 ] || [ "$gap" -gt "$NEW_LAUNCH_GAP" ]; then
    log "boot: new launch (down $(human "$gap")$([ "$S_FIRED" = 0 ] || echo ", after the autostop power-off")); idle and lifetime clocks restart at boot"
    S_LIFETIME_START=$boot_time
  else
    log "boot: reboot (down $(human "$gap")); idle clock restarts at boot, lifetime clock keeps running ($(human $((NOW - S_LIFETIME_START))) so far)"
  fi
  S_LAST_ACTIVITY=$boot_time
  S_BOOT_TIME=$boot_time
  S_FIRED=0
}

do_check() {
  if [ "$ENABLED" != 1 ]; then
    log "check: disarmed (ENABLED=$ENABLED in $CONFIG); nothing to do"
    return 0
  fi
  load_state
  local boot_id
  boot_id=unknown
  if [ -r "$BOOT_ID_FILE" ]; then boot_id=$(<"$BOOT_ID_FILE"); fi
  if [ "$boot_id" != "$S_BOOT_ID" ]; then
    on_boot
    S_BOOT_ID=$boot_id
  fi
  local reasons=() signal
  for signal in ssh_activity gpu_activity process_activity job_activity user_activity; do
    if "$signal"; then reasons+=("$REASON"); fi
  done
  S_PROC_CPU=$NEW_PROC_CPU

  S_LAST_CHECK=$NOW
  local idle lifetime joined
  if [ "${#reasons[@]}" -gt 0 ]; then
    S_LAST_ACTIVITY=$NOW
    joined=$(printf '%s; ' "${reasons[@]}")
    S_LAST_REASON="active: ${joined%; }"
  fi
  idle=$((NOW - S_LAST_ACTIVITY))
  lifetime=$((NOW - S_LIFETIME_START))

  local fire=""
  if [ "$MAX_LIFETIME_SECONDS" -gt 0 ] && [ "$lifetime" -ge "$MAX_LIFETIME_SECONDS" ]; then
    fire="lifetime $(human "$lifetime") >= max lifetime $(human "$MAX_LIFETIME_SECONDS")"
  elif [ "$IDLE_SECONDS" -gt 0 ] && [ "$idle" -ge "$IDLE_SECONDS" ]; then
    fire="idle $(human "$idle") >= $(human "$IDLE_SECONDS") (no ssh connections, $GPU_SUMMARY, no matching processes, no users)"
  fi

  if [ -z "$fire" ]; then
    if [ "${#reasons[@]}" -gt 0 ]; then
      log "check: ${S_LAST_REASON}; idle 0s of $(human "$IDLE_SECONDS"), lifetime $(human "$lifetime")"
    else
      S_LAST_REASON="idle: no ssh connections, $GPU_SUMMARY, no matching processes, no users"
      log "check: idle $(human "$idle") of $(human "$IDLE_SECONDS") (no ssh connections, $GPU_SUMMARY, no matching processes, no users), lifetime $(human "$lifetime")"
    fi
    save_state
    return 0
  fi

  S_FIRED=$NOW
  S_LAST_REASON="fired: $fire"
  save_state
  log "poweroff: $fire; action $ACTION (the instance's shutdown behaviour); running: $POWEROFF_CMD"
  # Word splitting is wanted: the command is a command line from the config.
  # shellcheck disable=SC2086
  if ! $POWEROFF_CMD; then
    log "poweroff: '$POWEROFF_CMD' failed; trying shutdown -h now"
    shutdown -h now || log "poweroff: shutdown -h now failed too"
  fi
}

do_status() {
  load_state
  local idle lifetime fires="null" idle_left="null" life_left="null" armed=false
  idle=$((NOW - S_LAST_ACTIVITY))
  lifetime=$((NOW - S_LIFETIME_START))
  [ "$S_LAST_CHECK" -gt 0 ] || { idle=0; lifetime=0; }
  if [ "$ENABLED" = 1 ]; then armed=true; fi
  if [ "$armed" = true ] && [ "$IDLE_SECONDS" -gt 0 ]; then
    idle_left=$((IDLE_SECONDS - idle))
    [ "$idle_left" -ge 0 ] || idle_left=0
    fires=$idle_left
  fi
  if [ "$armed" = true ] && [ "$MAX_LIFETIME_SECONDS" -gt 0 ]; then
    life_left=$((MAX_LIFETIME_SECONDS - lifetime))
    [ "$life_left" -ge 0 ] || life_left=0
    if [ "$fires" = null ] || [ "$life_left" -lt "$fires" ]; then fires=$life_left; fi
  fi
  local reason=${S_LAST_REASON//\\/\\\\}
  reason=${reason//\"/\\\"}
  printf '{"armed":%s,"action":"%s","idle_seconds":%d,"idle_limit_seconds":%d,"max_lifetime_seconds":%d,' \
    "$armed" "$ACTION" "$idle" "$IDLE_SECONDS" "$MAX_LIFETIME_SECONDS"
  printf '"lifetime_seconds":%d,"idle_left_seconds":%s,"lifetime_left_seconds":%s,"fires_in_seconds":%s,' \
    "$lifetime" "$idle_left" "$life_left" "$fires"
  printf '"last_check":%d,"last_activity":%d,"now":%d,"last_reason":"%s"}\n' \
    "$S_LAST_CHECK" "$S_LAST_ACTIVITY" "$NOW" "$reason"
}

do_arm() {
  load_state
  S_BOOT_ID=unknown
  if [ -r "$BOOT_ID_FILE" ]; then S_BOOT_ID=$(<"$BOOT_ID_FILE"); fi
  S_BOOT_TIME=$((NOW - $(uptime_seconds)))
  S_LAST_CHECK=$NOW
  S_LAST_ACTIVITY=$NOW
  S_LIFETIME_START=$NOW
  S_FIRED=0
  S_LAST_REASON="armed"
  save_state
  log "arm: idle $(human "$IDLE_SECONDS"), max lifetime $(human "$MAX_LIFETIME_SECONDS") (0s = none), action $ACTION; both clocks restart now"
}

print_units() {
  cat <<EOF
# --- gpumachine-autostop.service
[Unit]
Description=gpumachine autostop check (powers the host off when idle)
Documentation=https://github.com/gpumachine/gpumachine/blob/main/docs/cost.md

[Service]
Type=oneshot
Environment=AUTOSTOP_CONFIG=$CONFIG
ExecStart=$SELF_PATH --check
Nice=10
IOSchedulingClass=idle
# --- gpumachine-autostop.timer
[Unit]
Description=gpumachine autostop: one check a minute

[Timer]
# Calendar (not monotonic) so Persistent= applies: a check missed while down runs at boot.
OnCalendar=*-*-* *:*:00
# The default accuracy (1 min) would let systemd postpone a check by up to a minute.
AccuracySec=1s
Persistent=true

[Install]
WantedBy=timers.target
EOF
}

do_install() {
  mkdir -p "$SYSTEMD_DIR"
  print_units | awk -v dir="$SYSTEMD_DIR" '
    /^# --- / { out = dir "/" $3; printf "" > out; next }
    { print >> out }'
  $SYSTEMCTL daemon-reload
  $SYSTEMCTL enable --now gpumachine-autostop.timer
  do_arm
}

do_uninstall() {
  $SYSTEMCTL disable --now gpumachine-autostop.timer 2>/dev/null || true
  rm -f "$SYSTEMD_DIR/gpumachine-autostop.timer" "$SYSTEMD_DIR/gpumachine-autostop.service"
  $SYSTEMCTL daemon-reload || true
  log "uninstall: timer disabled and removed"
}

case "${1:---check}" in
  --check) do_check ;;
  --status) do_status ;;
  --arm) do_arm ;;
  --new-launch)
    load_state
    S_LIFETIME_START=$NOW
    save_state
    log "new launch: lifetime clock restarts now"
    ;;
  --install) do_install ;;
  --uninstall) do_uninstall ;;
  --print-units) print_units ;;
  *)
    echo "usage: gpumachine-autostop.sh [--check|--status|--arm|--new-launch|--install|--uninstall|--print-units]" >&2
    exit 2
    ;;
esac
