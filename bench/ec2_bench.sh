#!/bin/sh
# EC2 driver benchmarks against the emulator, in one run, printing a markdown table:
#  1. `gpumachine ls` of 200 ec2 machines over 4 regions with 100 ms injected latency per call
#     (target < 0.5 s wall), and the AWS CLI describing the same instances (one call per region,
#     as a user would have to) for the ratio;
#  2. create's overhead over the emulator's critical path (pending->running 3 s, sshd 2 s later:
#     5 s), target < 1 s.
# Usage: bench/ec2_bench.sh [BUILD_DIR]   (loopback only; needs python3 and /usr/bin/aws)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
gm=$build/gpumachine
work=$(mktemp -d /tmp/gm-ec2-bench.XXXXXX)
# shellcheck source=bench/lib/ec2_emulator.sh
. "$root/bench/lib/ec2_emulator.sh"  # the hosts here log in to this machine: never provisioned
cleanup() {
  stop_ec2_emulator
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

user=$(id -un)
start_ec2_emulator "$work" '{"run_sshd": true}'
url=$EMU_URL
ctl() { curl -s -X "$1" -H 'Content-Type: application/json' "$url/_emulator/$2" ${3:+-d "$3"}; }
now() { python3 -c 'import time; print(f"{time.monotonic():.4f}")'; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# --- 1. ls of 200 machines over 4 regions -------------------------------------------------------
ctl POST config '{"run_sshd": false}' >/dev/null
regions="us-east-1 us-west-2 eu-west-1 eu-central-1"
for r in $regions; do
  /usr/bin/aws --endpoint-url "$url" --region "$r" ec2 run-instances --image-id \
    "$(/usr/bin/aws --endpoint-url "$url" --region "$r" ssm get-parameters --names \
      /aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id \
      --query 'Parameters[0].Value' --output text)" \
    --instance-type t3.micro --count 50 --query 'Instances[].InstanceId' --output text \
    | tr '\t' '\n' >"$work/ids-$r"
done
python3 - "$work" "$regions" <<'PY'
import json, os, sys, uuid
work, regions = sys.argv[1], sys.argv[2].split()
n = 0
for region in regions:
    for iid in open(f"{work}/ids-{region}").read().split():
        name = f"m{n:03d}"; n += 1
        d = f"{work}/home/machines/{name}"
        os.makedirs(d, exist_ok=True)
        rec = {"schema_version": 1, "name": name, "id": str(uuid.uuid4()), "driver": "ec2",
               "driver_config": {"region": region, "instance_type": "t3.micro",
                                 "instance_id": iid, "image_id": "ami-x",
                                 "create_incomplete": False},
               "ssh": {"host": "", "port": 22, "user": "ubuntu", "key_path": "", "host_key": ""},
               "resources": [{"kind": "instance", "id": iid, "region": region,
                              "status": "created"}]}
        json.dump(rec, open(f"{d}/machine.json", "w"))
PY
sleep 1  # let the instances reach running
ctl POST config '{"latency_ms": 100}' >/dev/null
"$gm" ls >/dev/null  # warm the page cache
best_ls=
for _ in 1 2 3; do
  t0=$(now); "$gm" ls --format json >"$work/ls.json"; t1=$(now)
  t=$(elapsed "$t0" "$t1")
  best_ls=$(python3 -c "print(min(float('$t'), float('${best_ls:-1e9}')))")
done
running=$(python3 -c "import json; print(sum(r['state']=='running' for r in json.load(open('$work/ls.json'))))")
best_aws=
for _ in 1 2 3; do
  t0=$(now)
  for r in $regions; do
    /usr/bin/aws --endpoint-url "$url" --region "$r" ec2 describe-instances \
      --filters "Name=instance-id,Values=$(paste -sd, "$work/ids-$r")" \
      --query 'Reservations[].Instances[].State.Name' --output text >/dev/null
  done
  t1=$(now)
  t=$(elapsed "$t0" "$t1")
  best_aws=$(python3 -c "print(min(float('$t'), float('${best_aws:-1e9}')))")
done
ratio=$(python3 -c "print(f'{$best_aws / $best_ls:.1f}')")

# --- 2. create overhead -----------------------------------------------------------------------
ctl POST config '{"latency_ms": 0, "run_sshd": true, "ssh_delay": 2, "delays": {"pending": 3}}' >/dev/null
# create_once BINARY NAME: prints create's wall time in seconds.
create_once() {
  t0=$(now)
  # --wait ssh: the emulated instance logs in to this machine, which must never be provisioned.
  "$1" create --driver ec2 "$2" --ec2-instance-type t3.micro --ec2-ssh-user "$user" \
    --wait ssh 2>"$work/$2.err" >/dev/null
  t1=$(now)
  "$1" rm "$2" >/dev/null 2>&1
  elapsed "$t0" "$t1"
}
# GM_BEFORE=path/to/an/older/gpumachine: its creates interleave with these, order reversed
# every round. CREATES rounds (default 3).
creates=
before=
for i in $(seq 1 "${CREATES:-3}"); do
  if [ -n "${GM_BEFORE:-}" ] && [ $((i % 2)) = 0 ]; then
    before="$before $(create_once "$GM_BEFORE" "old$i")"
  fi
  creates="$creates $(create_once "$gm" "bench$i")"
  if [ -n "${GM_BEFORE:-}" ] && [ $((i % 2)) = 1 ]; then
    before="$before $(create_once "$GM_BEFORE" "old$i")"
  fi
done
stats() {
  python3 -c "
v = sorted(float(x) for x in '$1'.split())
print(f'{v[len(v)//2]:.2f} {v[0]:.2f} {v[-1]:.2f} {v[len(v)//2]-5:.2f}')"
}
# shellcheck disable=SC2046  # four numbers, split on purpose
set -- $(stats "$creates")

echo "| measurement | result | target |"
echo "|---|---|---|"
echo "| \`gpumachine ls\`, 200 ec2 machines, 4 regions, 100 ms latency per call (best of 3) | ${best_ls} s ($running running) | < 0.5 s |"
echo "| \`/usr/bin/aws ec2 describe-instances\`, same instances, one call per region (best of 3) | ${best_aws} s | |"
echo "| ratio aws / gpumachine | ${ratio}x | |"
echo "| \`create\` wall time, pending->running 3 s + sshd 2 s later (median of ${CREATES:-3}; min $2, max $3) | $1 s | |"
echo "| create overhead over the 5 s critical path (median) | $4 s | < 1 s |"
if [ -n "$before" ]; then
  # shellcheck disable=SC2046  # four numbers, split on purpose
  set -- $(stats "$before")
  echo "| GM_BEFORE's create overhead, same rounds (median; wall min $2, max $3) | $4 s | |"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
