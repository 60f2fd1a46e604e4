#!/usr/bin/env bash
# `gpumachine scp` side by side with OpenSSH's `scp` (SFTP protocol, its default since 9.0) in one
# run, against the same loopback sshd, key and pinned host key: 1000 files of 4 KiB (-r) and one
# large file, each both ways. Interleaved, order reversed every round (bench/compare.py).
# Usage: bench/scp_bench.sh [ROUNDS (default 7)] [LARGE_MB (default 100)]. Needs the build.
set -euo pipefail
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
rounds=${1:-7}
large_mb=${2:-100}
# shellcheck source=bench/lib/peer_machine.sh
source bench/lib/peer_machine.sh
start_peer_machine "$gm"
work=$WORK
scp_cmd="scp -q ${OPENSSH_OPTS/-p /-P }"
remote=$OPENSSH_DEST

mkdir "$work/small"
for i in $(seq 1000); do head -c 4096 /dev/urandom >"$work/small/f$i"; done
head -c "$((large_mb * 1000 * 1000))" /dev/urandom >"$work/large.bin"

echo "uptime before: $(uptime)"
w=$work
bench/compare.py --json "$w/small.json" "$rounds" \
  "gm upload 1000x4KiB" "rm -rf $w/u1 && exec $gm -q scp -r $w/small b0:$w/u1" \
  "scp upload 1000x4KiB" "rm -rf $w/u2 && exec $scp_cmd -r $w/small $remote:$w/u2" \
  "gm download 1000x4KiB" "rm -rf $w/d1 && exec $gm -q scp -r b0:$w/small $w/d1" \
  "scp download 1000x4KiB" "rm -rf $w/d2 && exec $scp_cmd -r $remote:$w/small $w/d2"
bench/compare.py --json "$w/large.json" "$rounds" \
  "gm upload ${large_mb} MB" "exec $gm -q scp $w/large.bin b0:$w/l1" \
  "scp upload ${large_mb} MB" "exec $scp_cmd $w/large.bin $remote:$w/l2" \
  "gm download ${large_mb} MB" "exec $gm -q scp b0:$w/large.bin $w/l3" \
  "scp download ${large_mb} MB" "exec $scp_cmd $remote:$w/large.bin $w/l4"
for d in u1 u2 d1 d2; do diff -r "$w/small" "$w/$d"; done
for f in l1 l2 l3 l4; do cmp "$w/large.bin" "$w/$f"; done
# GM_BEFORE=path/to/an/older/gpumachine: the same four small-file runs with it, in the same rounds.
if [[ -n ${GM_BEFORE:-} ]]; then
  bench/compare.py "$rounds" \
    "gm upload 1000x4KiB" "rm -rf $w/u1 && exec $gm -q scp -r $w/small b0:$w/u1" \
    "before: upload 1000x4KiB" "rm -rf $w/u3 && exec $GM_BEFORE -q scp -r $w/small b0:$w/u3" \
    "gm download 1000x4KiB" "rm -rf $w/d1 && exec $gm -q scp -r b0:$w/small $w/d1" \
    "before: download 1000x4KiB" "rm -rf $w/d3 && exec $GM_BEFORE -q scp -r b0:$w/small $w/d3"
fi
python3 - "$w/small.json" "$w/large.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))["results"]
    labels = list(r)
    for gm, peer in ((labels[0], labels[1]), (labels[2], labels[3])):
        print(f"{gm}: {r[peer]['median_s'] / r[gm]['median_s']:.2f}x OpenSSH's throughput")
PY
echo "uptime after: $(uptime)"
