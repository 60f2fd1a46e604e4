#!/usr/bin/env bash
# Provisioning benchmark on a simulated fresh Ubuntu 24.04 T4 host (tests/support/simhost) behind
# a real sshd: SSH handshakes, remote round trips per step, and wall time outside the simulated
# reboot's own wait; compared with Docker Machine's model of one SSH connection per remote command
# (two handshakes each in its native Go client), estimated from the commands the scripts ran and a
# handshake's measured cost. Prints markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
simhost="$PWD/tests/support/simhost/simhost"
work=$(mktemp -d)
cleanup() {
  if [[ -s "$work/sshd.pid" ]]; then kill "$(cat "$work/sshd.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
"$simhost" init "$work/host" --os ubuntu-24.04 --gpu t4 --nouveau --reboot-delay 0
options=""
while IFS= read -r line; do options+="environment=\"$line\","; done < <("$simhost" env "$work/host")
options+="environment=\"SIMHOST_ON_SHUTDOWN=kill \$(cat $work/sshd.pid)\","
options+="environment=\"SIMHOST_ON_BOOT=/usr/sbin/sshd -f $work/sshd_config -E $work/sshd.log\""
echo "$options $(cat "$work/user_key.pub")" >"$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin yes
PermitUserEnvironment yes
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -f "$work/sshd_config" -E "$work/sshd.log"
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

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
