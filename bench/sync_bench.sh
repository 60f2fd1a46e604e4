#!/usr/bin/env bash
# `gpumachine sync` (what `run` does first) side by side with plain `rsync -a --delete` over
# OpenSSH, in one run, against the same loopback sshd, key and pinned host key: a project of
# SIZE_MB in FILES files of mixed sizes (1 KB to tens of MB; generated once and cached under
# ${TMPDIR:-/tmp}), synced once to each destination untimed, then per run ONE small file changed
# and the project synced again. Interleaved, order reversed every round (bench/compare.py).
# Usage: bench/sync_bench.sh [ROUNDS (default 9)] [SIZE_MB (default 1000)] [FILES (default 2000)]
# Needs the build. GM_BEFORE=path/to/an/older/gpumachine measures it too, in the same rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
gm="$PWD/build/gpumachine"
rounds=${1:-9}
size_mb=${2:-1000}
files=${3:-2000}
project="${TMPDIR:-/tmp}/gm-sync-bench-${size_mb}mb-${files}/project"

if [[ ! -e "$project.complete" ]]; then
  echo "generating the project once: $files files, $size_mb MB in all ($project)"
  rm -rf "$(dirname "$project")"
  python3 - "$project" "$size_mb" "$files" <<'PY'
import math, os, random, sys
root, size_mb, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(13)
# Sizes spread evenly on a log scale from 1 KB to 64 MB, scaled to the total: mostly small
# source-like files, a few large data files.
raw = [math.exp(rng.uniform(math.log(1e3), math.log(64e6))) for _ in range(count)]
scale = size_mb * 1e6 / sum(raw)
block = os.urandom(1 << 20)
for i, r in enumerate(raw):
    path = os.path.join(root, f"d{i % 40:02d}", f"f{i:05d}.bin")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    left = max(1, int(r * scale))
    with open(path, "wb") as f:
        f.write(i.to_bytes(4, "little"))  # no two files alike
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
os.makedirs(os.path.join(root, "src"), exist_ok=True)
with open(os.path.join(root, "src", "train.py"), "w") as f:
    f.write("print('train')\n" * 200)
open(root + ".complete", "w").close()
PY
fi

# shellcheck source=bench/lib/peer_machine.sh
source bench/lib/peer_machine.sh
start_peer_machine "$gm"
w=$WORK
# The "machine"'s home inside WORK (not the real one): sshd sets it for the key.
mkdir -p "$w/remote"
sed -i "s|^|environment=\"HOME=$w/remote\" |" "$w/authorized_keys"
rsync_cmd="rsync -a --delete -e 'ssh $OPENSSH_OPTS' $project/ $OPENSSH_DEST:$w/peer/"
gm_cmd="$gm -q sync b0 --dir $project"

echo "first upload, untimed by compare.py (one run each):"
/usr/bin/time -f "  gpumachine sync: %e s" bash -c "$gm_cmd"
/usr/bin/time -f "  rsync -a --delete: %e s" bash -c "$rsync_cmd"

# Each run changes one small file first, so that every sync finds exactly one file changed since
# its own destination's last sync: a line more, so that its size differs (rsync's quick check
# compares size and whole-second mtimes; two runs can fall in one second).
change="echo \"# \$(date +%s%N)\" >>$project/src/train.py"
runs=("gpumachine sync, 1 file changed" "$change && exec $gm_cmd"
  "rsync -a --delete over ssh, 1 file changed" "$change && exec $rsync_cmd")
if [[ -n ${GM_BEFORE:-} ]]; then
  runs+=("before: gpumachine sync" "$change && exec $GM_BEFORE -q sync b0 --dir $project")
fi
echo "uptime before: $(uptime)"
bench/compare.py --json "$w/sync.json" --settle 0.3 "$rounds" "${runs[@]}"
echo "uptime after: $(uptime)"
# Both copies as the project is now (the last run changed it after one of them synced).
bash -c "$gm_cmd && $rsync_cmd"
diff -rq "$project" "$(echo "$w"/remote/gpumachine/projects/*)"
diff -rq "$project" "$w/peer"
python3 - "$w/sync.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
gm, peer = list(r)[:2]
print(f"gpumachine sync / rsync: {r[gm]['median_s'] / r[peer]['median_s']:.2f}x (median), "
      f"{r[gm]['best_s'] / r[peer]['best_s']:.2f}x (best); target <= 1.2x")
PY
