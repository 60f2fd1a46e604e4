#!/usr/bin/env bash
# Foundation benchmarks, side by side with OpenSSH in one run, on loopback:
#   - `gpumachine ls` and `ls --cached` over 200 stored machines (wall time, peak RSS)
#   - `gpumachine ssh NAME -- true` vs `ssh ... true` (connect + auth + exec)
#   - 100 MB upload: `gpumachine scp` vs OpenSSH `scp`
# Prints a markdown table. Needs the build (scripts/build.sh) and hyperfine.
set -euo pipefail
# The hosts here log in to this very machine: provisioning must refuse it (src/machine/setup.cc).
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
runs=${RUNS:-20}
# shellcheck source=scripts/lib/loopback_sshd.sh
source scripts/lib/loopback_sshd.sh
work=$(mktemp -d)
cleanup() {
  stop_loopback_sshd "$work"
  rm -rf "$work"
}
trap cleanup EXIT
start_loopback_sshd "$work"
port=$SSHD_PORT

export GPUMACHINE_HOME="$work/home" HOME="$work/user"
mkdir -p "$HOME"
"$gm" -q create --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$port" \
  --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" --no-provision b0 >/dev/null

# 199 more records cloned from the real one, pointing at a closed port (ls sees them refused).
closed=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$GPUMACHINE_HOME" "$closed" <<'PY'
import json, os, sys
home, closed = sys.argv[1], int(sys.argv[2])
rec = json.load(open(os.path.join(home, "machines", "b0", "machine.json")))
for i in range(1, 200):
    name = f"b{i}"
    d = os.path.join(home, "machines", name)
    os.makedirs(d, mode=0o700)
    r = dict(rec, name=name, ssh=dict(rec["ssh"], port=closed))
    with open(os.path.join(d, "machine.json"), "w") as f:
        json.dump(r, f)
PY

known="$work/known_hosts"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/host_key.pub")" >"$known"
ssh_opts=(-i "$work/user_key" -p "$port" -o IdentitiesOnly=yes -o BatchMode=yes
  -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null)

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1; }
mean() { python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' "$1"; }

hyperfine -N -w 3 -r "$runs" --export-json "$work/ls.json" "$gm ls" >/dev/null
hyperfine -N -w 3 -r "$runs" --export-json "$work/lsc.json" "$gm ls --cached" >/dev/null
ls_rss=$(rss "$gm" ls)
hyperfine -N -w 3 -r "$runs" --export-json "$work/gm_ssh.json" "$gm ssh b0 -- true" >/dev/null
hyperfine -N -w 3 -r "$runs" --export-json "$work/ssh.json" \
  "ssh ${ssh_opts[*]} $(id -un)@127.0.0.1 true" >/dev/null
hyperfine -N -w 3 -r "$runs" --export-json "$work/ssh_c25519.json" \
  "ssh ${ssh_opts[*]} -o KexAlgorithms=curve25519-sha256 $(id -un)@127.0.0.1 true" >/dev/null

head -c 104857600 /dev/urandom >"$work/100m.bin"
hyperfine -N -w 1 -r 5 --export-json "$work/gm_scp.json" \
  "$gm scp $work/100m.bin b0:$work/up-gm.bin" >/dev/null
hyperfine -N -w 1 -r 5 --export-json "$work/scp.json" \
  "scp -q ${ssh_opts[*]/-p/-P} $work/100m.bin $(id -un)@127.0.0.1:$work/up-scp.bin" >/dev/null
cmp "$work/100m.bin" "$work/up-gm.bin"

ls_ms=$(mean "$work/ls.json"); lsc_ms=$(mean "$work/lsc.json")
gm_ssh=$(mean "$work/gm_ssh.json"); ssh_ms=$(mean "$work/ssh.json"); ssh_c=$(mean "$work/ssh_c25519.json")
gm_scp=$(mean "$work/gm_scp.json"); scp_ms=$(mean "$work/scp.json")
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
mbps() { python3 -c "print('%.0f' % (100 / ($1 / 1000)))"; }

echo "| measurement | gpumachine | OpenSSH | ratio |"
echo "|---|---|---|---|"
echo "| \`ls\`, 200 stored machines (live state checks) | ${ls_ms} ms, peak RSS ${ls_rss} KiB | - | - |"
echo "| \`ls --cached\`, 200 stored machines | ${lsc_ms} ms | - | - |"
echo "| \`ssh NAME -- true\` (connect, auth, exec) | ${gm_ssh} ms | ${ssh_ms} ms (default kex), ${ssh_c} ms (curve25519) | $(ratio "$gm_ssh" "$ssh_ms") / $(ratio "$gm_ssh" "$ssh_c") |"
echo "| 100 MB upload | ${gm_scp} ms ($(mbps "$gm_scp") MB/s) | ${scp_ms} ms ($(mbps "$scp_ms") MB/s) | throughput $(ratio "$scp_ms" "$gm_scp") of OpenSSH |"
