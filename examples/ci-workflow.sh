#!/bin/sh
# CI: create a machine, run a command on it, and always remove it (even when the command fails
# or the job is cancelled). Usage: examples/ci-workflow.sh [COMMAND...]
#   GPUMACHINE_FILE   machine file (default examples/cpu-debug.yaml)
#   GPUMACHINE_NAME   machine name (default ci-<random>)
set -u
name=${GPUMACHINE_NAME:-ci-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')}
file=${GPUMACHINE_FILE:-examples/cpu-debug.yaml}
gm=${GPUMACHINE:-gpumachine}

# shellcheck disable=SC2317  # called through the trap
cleanup() {
  # --yes: no terminal in CI. rm is idempotent and also finishes an interrupted create.
  # rm --force exits non-zero when something was left behind (it may still bill): fail the job.
  if ! "$gm" --yes rm "$name" && ! "$gm" --yes rm --force "$name"; then
    echo "cloud resources of $name were left behind; see above" >&2
    exit 1
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$gm" create -f "$file" "$name" || exit 1
if [ "$#" -eq 0 ]; then
  set -- nvidia-smi
fi
"$gm" ssh "$name" -- "$@"
status=$?
echo "remote command exited with $status" >&2
exit "$status"
