#!/usr/bin/env bash
# `gpumachine ls` with 200 live machines, side by side with Docker Machine's model, in one run:
#   - shared: 200 records behind one sshd on 127.0.0.1 (a bastion, a NAT, a test box);
#   - distinct: 200 sshd, one per loopback address 127.0.2.1-200.
# Docker Machine's binary is not installed here (nor is Go to build it). Its `ls` starts one driver
# plugin process per machine, one after another (LoadAllHosts, ../shared/spec/anchor-docker-machine.md
# section 5), before any state check; the peer measured is that floor: 200 sequential starts of a
# Go binary (`docker --version`), which is less than Docker Machine does.
# Usage: bench/ls_bench.sh [ROUNDS (default 15)]. Needs the build (scripts/build.sh).
set -euo pipefail
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
rounds=${1:-15}
# shellcheck source=scripts/lib/loopback_sshd.sh
source scripts/lib/loopback_sshd.sh
work=$(mktemp -d)
cleanup() {
  stop_loopback_sshd "$work"
  local pid_file
  for pid_file in "$work"/distinct/*.pid; do
    [[ -s "$pid_file" ]] && kill "$(cat "$pid_file")" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT
start_loopback_sshd "$work"
port=$SSHD_PORT
# Every sshd here without re-execution (-r): a check costs the server a fork, not a new sshd
# process image, so that 200 servers on this one machine do not starve the client measured.
shared_pid=$(cat "$work/sshd.pid")
stop_loopback_sshd "$work"
while kill -0 "$shared_pid" 2>/dev/null; do sleep 0.05; done
/usr/sbin/sshd -r -f "$work/sshd_config" -E "$work/sshd.log"
for _ in $(seq 100); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

export HOME="$work/user"
mkdir -p "$HOME" "$work/distinct"
GPUMACHINE_HOME="$work/shared" "$gm" -q create --driver generic --generic-ip-address 127.0.0.1 \
  --generic-ssh-port "$port" --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" \
  --no-provision b0 >/dev/null

# One sshd per machine for the distinct case: the same host key and port, its own address.
grep -v -e '^ListenAddress' -e '^PidFile' "$work/sshd_config" >"$work/distinct/sshd_config"
for i in $(seq 200); do
  /usr/sbin/sshd -r -f "$work/distinct/sshd_config" -o "ListenAddress=127.0.2.$i" \
    -o "PidFile=$work/distinct/$i.pid" -E "$work/distinct/sshd.log"
done

# 199 more records cloned from the real one (shared), and 200 on the distinct addresses.
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
rec = json.load(open(os.path.join(work, "shared", "machines", "b0", "machine.json")))
def write(home, name, ssh):
    d = os.path.join(work, home, "machines", name)
    os.makedirs(d, mode=0o700, exist_ok=True)
    with open(os.path.join(d, "machine.json"), "w") as f:
        json.dump(dict(rec, name=name, ssh=dict(rec["ssh"], **ssh)), f)
for i in range(1, 200):
    write("shared", f"b{i}", {})
for i in range(200):
    write("distinct", f"d{i}", {"host": f"127.0.2.{i + 1}"})
PY

for home in shared distinct; do
  running=$(GPUMACHINE_HOME="$work/$home" "$gm" ls --format json |
    python3 -c 'import json,sys; print(sum(r["state"] == "running" for r in json.load(sys.stdin)))')
  [[ $running == 200 ]] || { echo "$home: only $running of 200 running" >&2; exit 1; }
done

runs=(
  "gpumachine ls, 200 live behind one address" "GPUMACHINE_HOME=$work/shared exec $gm ls"
  "gpumachine ls, 200 live on distinct addresses" "GPUMACHINE_HOME=$work/distinct exec $gm ls"
  "gpumachine ls --cached (no checks), 200" "GPUMACHINE_HOME=$work/distinct exec $gm ls --cached"
  "Docker Machine floor: 200 plugin starts" "for _ in {1..200}; do docker --version; done")
# GM_BEFORE=path/to/an/older/gpumachine measures it too, in the same rounds.
if [[ -n ${GM_BEFORE:-} ]]; then
  runs+=("before: ls, behind one address" "GPUMACHINE_HOME=$work/shared exec $GM_BEFORE ls"
    "before: ls, distinct addresses" "GPUMACHINE_HOME=$work/distinct exec $GM_BEFORE ls")
fi
echo "uptime before: $(uptime)"
bench/compare.py --json "$work/ls.json" --settle 1 "$rounds" "${runs[@]}"
python3 - "$work/ls.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
peer = r["Docker Machine floor: 200 plugin starts"]["median_s"]
for label in ("gpumachine ls, 200 live behind one address", "gpumachine ls, 200 live on distinct addresses"):
    print(f"{label}: {peer / r[label]['median_s']:.0f}x the Docker Machine floor")
PY
echo "uptime after: $(uptime)"
