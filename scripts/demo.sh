#!/usr/bin/env bash
# The demo of the main job on the built-in setup (no cloud account needed).
# Part 1, EC2: the project's EC2 emulator (tools/ec2_emulator, a test tool that checks SigV4, speaks
# EC2's XML and runs a real sshd per instance on 127.0.x.y:22) stands in for AWS: create a GPU
# instance, ssh, stop, start (new address), rm, and show that nothing is left. The emulated
# instances log in to this machine, so this part does not provision them (--wait ssh).
# Part 2, generic: a real OpenSSH sshd on loopback plays the user's existing GPU host. Its logins land on a SIMULATED host
# (tests/support/simhost: stub apt-get, nvidia-smi, reboot... modelling an Ubuntu 24.04 machine
# with a T4), so the real provisioning scripts run unmodified and nothing is installed here.
# create (register, provision: driver, reboot, Docker, toolkit) -> ssh -> scp -> probe -> ls -> rm.
# Everything it starts is stopped by pid on exit. It runs unattended: nothing asks a question
# (stdin is /dev/null and every rm says --yes), and it exits 0 when every step worked.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null
echo "== setting up: Debian packages the build and the demo need (a no-op when all are there)"
scripts/setup.sh
echo "== building gpumachine (the first build takes several minutes)"
scripts/build.sh gpumachine
gm="$PWD/build/gpumachine"

# shellcheck source=scripts/lib/loopback_sshd.sh
source scripts/lib/loopback_sshd.sh
work=$(mktemp -d)
emu_pid=
cleanup() {
  if [[ -n "$emu_pid" ]]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  stop_loopback_sshd "$work"
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

ec2_part() {
  step "EC2: starting the EC2 emulator on 127.0.0.1 (instances get addresses in 127.0.0.0/8)"
  cat >"$work/emu.json" <<'JSON'
{"delays": {"pending": 2, "stopping": 1, "shutting_down": 1}, "ssh_delay": 1,
 "ip_pool": {"first": "127.0.77.1", "last": "127.0.77.250"}}
JSON
  /usr/bin/python3 tools/ec2_emulator/ec2_emulator.py --state-dir "$work/emu" --port 0 \
    --config "$work/emu.json" >"$work/emu.out" 2>"$work/emu.log" &
  emu_pid=$!
  local emu_port=""
  for _ in $(seq 100); do
    emu_port=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$work/emu.out")
    [[ -n "$emu_port" ]] && break
    sleep 0.1
  done
  echo "emulator pid $emu_pid on http://127.0.0.1:$emu_port"
  # AWS's documented example key pair, which the emulator accepts; never a real credential.
  local -a aws_env=(AWS_ACCESS_KEY_ID=AKIDEXAMPLE
    AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY AWS_REGION=us-east-1
    AWS_ENDPOINT_URL="http://127.0.0.1:$emu_port" AWS_EC2_METADATA_DISABLED=true
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null GPUMACHINE_CALLER_IP=127.0.0.1
    GPUMACHINE_HOME="$work/ec2-home" HOME="$work/ec2-user")
  mkdir -p "$work/ec2-user"
  gme() { printf '$ gpumachine %s\n' "$*"; env "${aws_env[@]}" "$gm" "$@"; }

  step "EC2: create a g4dn.xlarge (key pair, security group for 127.0.0.1/32, IMDSv2, tags; host key known before the first connection)"
  gme --yes create --driver ec2 --ec2-instance-type g4dn.xlarge --ec2-ssh-user root --wait ssh gpu1
  # shellcheck disable=SC2016 # expanded on the instance, on purpose
  gme ssh gpu1 -- 'echo "hello from emulated instance $EC2EMU_INSTANCE_ID"'
  gme ls
  step "EC2: stop and start: the instance comes back with a new public address"
  gme ip gpu1
  gme stop gpu1
  gme start gpu1
  gme ip gpu1
  gme ssh gpu1 -- true && echo "ssh works at the new address, host key still verified"
  step "EC2: rm removes the instance, its security group and its key pair; gc finds nothing left"
  gme --yes rm gpu1
  gme gc --region us-east-1
  curl -s "http://127.0.0.1:$emu_port/_emulator/state" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
r = s.get("regions", s).get("us-east-1", {})
live = [i for i, v in r.get("instances", {}).items() if v.get("state") != "terminated"]
print("emulator: %d live instances, %d security groups besides default, %d key pairs, %d volumes"
      % (len(live), len([g for g in r.get("security_groups", {}).values() if g.get("name", g.get("groupName")) != "default"]),
         len(r.get("key_pairs", {})), len(r.get("volumes", {}))))'
  kill "$emu_pid"
  wait "$emu_pid" 2>/dev/null || true
  emu_pid=
}

if [[ $(id -u) -eq 0 ]]; then
  ec2_part
else
  echo "skipping the EC2 part: emulated instances listen on 127.x.y.z:22, which needs root"
fi

step "generic: starting a throwaway OpenSSH server on 127.0.0.1 whose logins land on a simulated Ubuntu 24.04 host with a T4"
simhost=tests/support/simhost/simhost
"$simhost" init "$work/host" --os ubuntu-24.04 --gpu t4 --nouveau --reboot-delay 1
start_loopback_sshd "$work" "$(simhost_key_options "$simhost" "$work/host" "$work")"
port=$SSHD_PORT
echo "sshd pid $(cat "$work/sshd.pid") listening on 127.0.0.1:$port"

export GPUMACHINE_HOME="$work/home"
step "register it as a machine: host key pinned, facts collected, then provisioned (driver, reboot, Docker, toolkit)"
run "$gm" create --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$port" \
  --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" --no-probe demo

step "provisioning again is a no-op: every step's check passes"
run "$gm" provision demo

step "run a command on it (its exit status becomes ours)"
run "$gm" ssh demo -- nvidia-smi --query-gpu=name,driver_version --format=csv
set +e
"$gm" ssh demo -- 'exit 7'
echo "remote 'exit 7' gave exit status $?"
set -e
# The hosts here log in to this very machine: provisioning must refuse it (src/machine/setup.cc).
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID

step "the GPU probe runs real CUDA kernels; this simulated host has no real NVIDIA driver, so it says so (exit 6)"
set +e
"$gm" probe demo
echo "probe exit status $?"
set -e

step "copy a file there and back"
head -c 10485760 /dev/urandom >"$work/data.bin"
run "$gm" scp "$work/data.bin" "demo:$work/remote.bin"
run "$gm" scp "demo:$work/remote.bin" "$work/back.bin"
sha256sum "$work/data.bin" "$work/back.bin"

step "list machines"
run "$gm" ls
# Not `| head`: under pipefail, head closing the pipe early would kill gpumachine with SIGPIPE.
run "$gm" inspect demo --format json >"$work/inspect.json"
sed -n 1,20p "$work/inspect.json"

step "remove it"
run "$gm" --yes rm demo
run "$gm" ls
echo
echo "demo finished: nothing left behind (sshd stopped by pid, temp home and simulated host removed)"
