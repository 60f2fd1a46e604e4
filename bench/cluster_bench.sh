#!/bin/sh
# `create --nodes 8` against `create` of one node on the EC2 emulator (pending->running 3 s, sshd
# 2 s later), interleaved, the order reversed every round; prints a markdown table with the
# medians, their ratio (target <= 1.1x: the nodes boot together and are waited for together) and
# the load. Usage: bench/cluster_bench.sh [BUILD_DIR]   (loopback only; ROUNDS, default 3)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
gm=${1:-$root/build}/gpumachine
work=$(mktemp -d /tmp/gm-cluster-bench.XXXXXX)
# shellcheck source=bench/lib/ec2_emulator.sh
. "$root/bench/lib/ec2_emulator.sh"
cleanup() {
  stop_ec2_emulator
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_ec2_emulator "$work" '{"ssh_delay": 2, "delays": {"pending": 3, "shutting_down": 0.3}}'

now() { python3 -c 'import time; print(f"{time.monotonic():.4f}")'; }
# create_once NAME [--nodes N]: prints create's wall time in seconds, then removes it.
create_once() {
  name=$1
  shift
  t0=$(now)
  # --wait ssh: the emulated instances log in to this machine, which must never be provisioned.
  "$gm" create --driver ec2 "$name" --ec2-instance-type t3.micro --ec2-ssh-user "$(id -un)" \
    --ec2-root-size 20 --wait ssh "$@" >/dev/null 2>"$work/$name.err" ||
    { cat "$work/$name.err" >&2; exit 1; }
  t1=$(now)
  "$gm" rm "$name" >/dev/null 2>&1
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}
one=
eight=
loads=
for i in $(seq 1 "${ROUNDS:-3}"); do
  loads="$loads $(cut -d' ' -f1 /proc/loadavg)"
  if [ $((i % 2)) = 1 ]; then
    one="$one $(create_once "one$i")"
    eight="$eight $(create_once "eight$i" --nodes 8)"
  else
    eight="$eight $(create_once "eight$i" --nodes 8)"
    one="$one $(create_once "one$i")"
  fi
done
median() { python3 -c "v = sorted(float(x) for x in '$1'.split()); print(f'{v[len(v)//2]:.2f}')"; }
m1=$(median "$one")
m8=$(median "$eight")
echo "| measurement (median of ${ROUNDS:-3}) | result | target |"
echo "|---|---|---|"
echo "| \`create\`, one node (runs:$one) | $m1 s | |"
echo "| \`create --nodes 8\` (runs:$eight) | $m8 s | |"
echo "| ratio 8 nodes / 1 node | $(python3 -c "print(f'{$m8 / $m1:.2f}')")x | <= 1.1x |"
echo "1-minute load before each round:$loads; after: $(cut -d' ' -f1-3 /proc/loadavg) (uptime: $(uptime))"
