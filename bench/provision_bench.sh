#!/usr/bin/env bash
# Provisioning benchmark on a simulated fresh Ubuntu 24.04 T4 host (tests/support/simhost) behind
# a real sshd: SSH handshakes, remote round trips per step, and wall time outside the simulated
# reboot's own wait; compared with Docker Machine's model of one SSH connection per remote command
# (two handshakes each in its native Go client), estimated from the commands the scripts ran and a
# handshake's measured cost. Prints markdown.
set -euo pipefail
# The hosts here log in to this very machine: provisioning must refuse it (src/machine/setup.cc).
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
simhost="$PWD/tests/support/simhost/simhost"
# shellcheck source=scripts/lib/loopback_sshd.sh
source scripts/lib/loopback_sshd.sh
work=$(mktemp -d)
cleanup() {
  stop_loopback_sshd "$work"
  rm -rf "$work"
}
trap cleanup EXIT
"$simhost" init "$work/host" --os ubuntu-24.04 --gpu t4 --nouveau --reboot-delay 0
start_loopback_sshd "$work" "$(simhost_key_options "$simhost" "$work/host" "$work")"
port=$SSHD_PORT

export GPUMACHINE_HOME="$work/home" HOME="$work/user"
mkdir -p "$HOME"
"$gm" -q create --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$port" \
  --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" --no-provision sim >/dev/null
: >"$work/host/commands.log"
start=$(date +%s.%N)
"$gm" -q --format json provision sim >"$work/fresh.json"
end=$(date +%s.%N)
commands=$(wc -l <"$work/host/commands.log")
"$gm" -q --format json provision sim >"$work/again.json"
handshake_ms=$(hyperfine -N -w 2 -r 10 --export-json "$work/hs.json" "$gm ssh sim -- true" >/dev/null &&
  python3 -c 'import json; print("%.0f" % (json.load(open("'"$work/hs.json"'"))["results"][0]["mean"] * 1000))')

python3 - "$work/fresh.json" "$work/again.json" "$start" "$end" "$commands" "$handshake_ms" <<'PY'
import json, sys
fresh, again = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
start, end, commands, hs = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
wall = end - start
reboot = sum(s["seconds"] for s in fresh["steps"] if s["step"] == "reboot")
ran = [s for s in fresh["steps"] if s["outcome"] != "skipped"]
print("| measurement | fresh host | ready host (re-run) |")
print("|---|---|---|")
print(f"| SSH handshakes | {fresh['handshakes']} (1 + {fresh['reboots']} reboot) | {again['handshakes']} |")
print(f"| remote round trips | {fresh['round_trips']} for {len(ran)} steps run | {again['round_trips']} |")
print(f"| wall time | {wall:.2f} s, of which {reboot:.2f} s waiting out the reboot | "
      f"{sum(s['seconds'] for s in again['steps']):.2f} s |")
print(f"| wall time outside the reboot wait | {wall - reboot:.2f} s | |")
dm = 2 * commands
print()
print(f"Docker Machine's model (a new SSH connection per remote command, two handshakes each in its "
      f"native client) would need about {dm} handshakes for the {commands} commands these scripts "
      f"ran on the host; at the {hs:.0f} ms a connection costs here that is about "
      f"{dm * hs / 1000:.1f} s of handshakes alone, against {fresh['handshakes']} handshakes "
      f"({fresh['handshakes'] * hs / 1000:.2f} s) for gpumachine.")
PY
