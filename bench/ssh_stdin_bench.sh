#!/usr/bin/env bash
# Piped stdin through `gpumachine ssh NAME -- cmd` side by side with OpenSSH's `ssh` in one run:
# `tar c . | ... tar x` of a tree of random files, against the same loopback sshd and key.
# Interleaved, order reversed every round (bench/compare.py); then each client's peak RSS.
# Usage: bench/ssh_stdin_bench.sh [ROUNDS (default 7)] [MB (default 200)]. Needs the build.
set -euo pipefail
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
rounds=${1:-7}
mb=${2:-200}
# shellcheck source=bench/lib/peer_machine.sh
source bench/lib/peer_machine.sh
start_peer_machine "$gm"
work=$WORK
ssh_cmd="ssh $OPENSSH_OPTS $OPENSSH_DEST"

mkdir "$work/src"
for i in $(seq "$((mb / 4))"); do head -c 4000000 /dev/urandom >"$work/src/f$i"; done
w=$work
echo "uptime before: $(uptime)"
bench/compare.py --json "$w/stdin.json" "$rounds" \
  "gpumachine ssh: tar c | tar x, $mb MB" \
  "rm -rf $w/x1 && mkdir $w/x1 && tar c -C $w/src . | $gm ssh b0 -- tar x -C $w/x1" \
  "OpenSSH ssh: tar c | tar x, $mb MB" \
  "rm -rf $w/x2 && mkdir $w/x2 && tar c -C $w/src . | $ssh_cmd tar x -C $w/x2"
diff -r "$w/src" "$w/x1"
diff -r "$w/src" "$w/x2"
rss() { tar c -C "$w/src" . | /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1; }
gm_rss=$(rss "$gm" ssh b0 -- cat)
ssh_rss=$(rss bash -c "exec $ssh_cmd cat")
python3 - "$w/stdin.json" "$mb" "$gm_rss" "$ssh_rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
gm, peer = list(r)
mb = int(sys.argv[2])
print(f"gpumachine {mb / r[gm]['median_s']:.0f} MB/s, OpenSSH {mb / r[peer]['median_s']:.0f} MB/s: "
      f"{r[peer]['median_s'] / r[gm]['median_s']:.2f}x OpenSSH's throughput")
print(f"peak RSS piping {mb} MB: gpumachine {sys.argv[3]} KiB, OpenSSH {sys.argv[4]} KiB")
PY
echo "uptime after: $(uptime)"
