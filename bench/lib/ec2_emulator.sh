# shellcheck shell=sh
# The EC2 emulator for a bench (sourced; `set -eu`): start_ec2_emulator WORK CONFIG_JSON starts
# tools/ec2_emulator on loopback with its state in WORK, CONFIG_JSON merged over a fresh loopback
# address range for its instances, and exports what the gpumachine binary needs to use it (a home
# in WORK, the emulator's credentials and endpoint, the caller's address); sets EMU_URL.
# stop_ec2_emulator ends it by its pid. Instances log in to this machine: provisioning refuses it.
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID
EMU_PID=

start_ec2_emulator() {
  emu_work=$1
  second=$(( 2 + ($$ % 240) ))
  python3 -c 'import json, sys
base = {"ip_pool": {"first": f"127.{sys.argv[1]}.1.1", "last": f"127.{sys.argv[1]}.254.254"},
        "private_ip_pool": {"first": f"127.{sys.argv[1]}.255.1"}, "login_user": sys.argv[2]}
base.update(json.loads(sys.argv[3]))
print(json.dumps(base))' "$second" "$(id -un)" "$2" >"$emu_work/config.json"
  : >"$emu_work/emu.out"  # there before the loop below reads it (the start is asynchronous)
  python3 "$(dirname "$0")/../tools/ec2_emulator/ec2_emulator.py" --state-dir "$emu_work/state" \
    --port 0 --config "$emu_work/config.json" >"$emu_work/emu.out" 2>"$emu_work/emu.err" &
  EMU_PID=$!
  emu_port=
  for _ in $(seq 1 300); do
    emu_port=$(awk '/^READY/ {print $2}' "$emu_work/emu.out")
    [ -n "$emu_port" ] && break
    sleep 0.05
  done
  [ -n "$emu_port" ] || { echo "emulator did not start" >&2; cat "$emu_work/emu.err" >&2; exit 1; }
  EMU_URL=http://127.0.0.1:$emu_port
  export GPUMACHINE_HOME="$emu_work/home" HOME="$emu_work/userhome" NO_COLOR=1
  export AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
  export AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$EMU_URL" AWS_EC2_METADATA_DISABLED=true
  export GPUMACHINE_CALLER_IP=127.0.0.1 AWS_SHARED_CREDENTIALS_FILE=/nonexistent
  export AWS_CONFIG_FILE=/nonexistent
  mkdir -p "$HOME"
}

stop_ec2_emulator() {
  if [ -n "$EMU_PID" ]; then
    if [ -n "${EMU_URL:-}" ]; then
      curl -s -X POST "$EMU_URL/_emulator/shutdown" >/dev/null 2>&1 || true
    fi
    kill "$EMU_PID" 2>/dev/null || true
    wait "$EMU_PID" 2>/dev/null || true
  fi
}
