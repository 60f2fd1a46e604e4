#!/usr/bin/env bash
# Benchmarks of the autostop agent (src/cost/agent/gpumachine-autostop.sh), results in
# docs/benchmarks.md ("Cost control"):
#   1. CPU time per check (user+sys of the agent and every process it starts), over many checks,
#      against recorded inputs and against this machine's live /proc, ps and who.
#   2. The delay between the idle threshold and the power-off command, measured with a fast
#      simulated timer (one check a second) over trials at random phases.
# Usage: bench/autostop_bench.sh [CHECKS] [TRIALS]. Touches nothing outside a temp directory.
set -euo pipefail
# The hosts here log in to this very machine: provisioning must refuse it (src/machine/setup.cc).
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID
checks=${1:-300}
trials=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
agent=$root/src/cost/agent/gpumachine-autostop.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

cat >"$T/conf" <<CONF
IDLE_SECONDS=1800
STATE_FILE=$T/state
LOG_FILE=$T/autostop.log
POWEROFF_CMD=true
CONF
{
  echo "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
  echo "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0"
  for i in $(seq 1 40); do
    printf '   %d: 0100007F:%04X 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 20 4 30 10 -1\n' "$i" $((30000 + i)) $((1000 + i))
  done
} >"$T/tcp"
printf '0\n0\n0\n0\n0\n0\n0\n0\n' >"$T/gpu.txt"
printf '#!/bin/sh\ncat %s\n' "$T/gpu.txt" >"$T/nvidia-smi"
chmod +x "$T/nvidia-smi"
ps -eo pid=,time=,args= >"$T/ps.txt"   # this machine's process table, recorded once
: >"$T/who.txt"

recorded_env=(AUTOSTOP_CONFIG="$T/conf" AUTOSTOP_PROC_NET_TCP="$T/tcp" AUTOSTOP_PROC_NET_TCP6=/nonexistent
  AUTOSTOP_NVIDIA_SMI="$T/nvidia-smi" AUTOSTOP_PS_CMD="cat $T/ps.txt" AUTOSTOP_WHO_CMD="cat $T/who.txt")
live_env=(AUTOSTOP_CONFIG="$T/conf" AUTOSTOP_NVIDIA_SMI="$T/nvidia-smi")

cpu_per_check() {  # label, env...
  local label=$1
  shift
  rm -f "$T/state" "$T/autostop.log"
  env "$@" bash "$agent" --arm
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  /usr/bin/time -f '%U %S %e' -o "$T/time" bash -c '
    for _ in $(seq 1 "$1"); do env "${@:3}" bash "$2" --check; done' _ "$checks" "$agent" "$@"
  read -r user sys wall <"$T/time"
  awk -v l="$label" -v u="$user" -v s="$sys" -v w="$wall" -v n="$checks" 'BEGIN {
    ms = (u + s) * 1000 / n
    printf "%-34s %5d checks  cpu %6.2f ms/check  wall %6.2f ms/check  = %.4f%% of one core at 1 check/min\n",
      l, n, ms, w * 1000 / n, ms / 60000 * 100 }'
}

echo "== CPU per check ($(nproc) cores, $(uname -r), bash ${BASH_VERSION%%(*}, $(readlink -f "$(command -v awk)"))"
cpu_per_check "recorded inputs (40 ssh conns, 8 GPUs)" "${recorded_env[@]}"
cpu_per_check "live /proc/net/tcp, ps, who" "${live_env[@]}"
perf stat -x, -e task-clock -r 20 env "${recorded_env[@]}" bash "$agent" --check 2>"$T/perf" >/dev/null || true
awk -F, '/task-clock/ { printf "perf stat (20 runs, recorded inputs): task-clock %.2f ms per check\n", $1 }' "$T/perf"

echo "== Delay from the idle threshold to the power-off command (simulated timer: 1 check/s)"
idle=5
cat >"$T/conf" <<CONF
IDLE_SECONDS=$idle
STATE_FILE=$T/state
LOG_FILE=$T/autostop.log
POWEROFF_CMD=$T/poweroff
PROCESSES=
BUSY_PROCESSES=
CONF
# The power-off stub records when it ran and the last activity the agent had seen (its state).
# shellcheck disable=SC2016 # the $(...) belong to the stub, not to this script
printf '#!/bin/sh\necho "$(date +%%s.%%N) $(sed -n "s/^last_activity=//p" %s)" >%s.tmp && mv %s.tmp %s\n' \
  "$T/state" "$T/fired" "$T/fired" "$T/fired" >"$T/poweroff"
chmod +x "$T/poweroff"
delays=()
ends=()
for _ in $(seq 1 "$trials"); do
  rm -f "$T/state" "$T/fired"
  # An established ssh connection until "end"; then idle. The timer runs free at 1 s.
  env "${recorded_env[@]}" bash "$agent" --arm
  sleep "0.$((RANDOM % 10))"
  ( while [ ! -f "$T/fired" ]; do env "${recorded_env[@]}" bash "$agent" --check; sleep 1; done ) &
  loop=$!
  sleep 1.3
  head -2 "$T/tcp" >"$T/tcp.idle"
  cp "$T/tcp" "$T/tcp.busy"
  cp "$T/tcp.idle" "$T/tcp"
  end=$(date +%s.%N)
  while [ ! -f "$T/fired" ]; do sleep 0.05; done
  wait "$loop" 2>/dev/null || true
  cp "$T/tcp.busy" "$T/tcp"
  read -r fired_at last_active <"$T/fired"
  # Threshold = the last check that saw activity + the window (the agent's own idle clock);
  # also versus the moment the activity really ended (the agent only samples).
  delays+=("$(awk -v f="$fired_at" -v l="$last_active" -v i="$idle" 'BEGIN { printf "%.3f", f - l - i }')")
  ends+=("$(awk -v f="$fired_at" -v e="$end" -v i="$idle" 'BEGIN { printf "%.3f", f - e - i }')")
done
summary() {
  sort -n | awk -v what="$1" '{ d[NR] = $1; s += $1 }
    END { printf "  %-44s min %5.2fs  median %5.2fs  max %5.2fs  mean %5.2fs\n", what, d[1], d[int((NR + 1) / 2)], d[NR], s / NR }'
}
echo "$trials trials, window ${idle}s, check period 1 s (+ ~0.25 s for the check itself on this loaded machine):"
printf '%s\n' "${delays[@]}" | summary "power-off after threshold (last seen + window)"
printf '%s\n' "${ends[@]}" | summary "power-off after (real end of activity + window)"
