#!/usr/bin/env bash
# Step "verify": the driver answers, Docker answers, and a container sees the GPUs. Prints the
# versions as one JSON line ("gm: json {...}") for the machine record.
# plan: nvidia-smi (driver version, CUDA version, GPU names)
# plan: docker version; docker run --rm --gpus all ${GM_IMAGE} nvidia-smi (a note, not an error, when the image cannot be pulled)
set -euo pipefail # also set by lib.sh, which is sent first
js() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}
driver="" cuda="" names="" ctk="" container=skipped fm=""
if [ "${GM_HAS_GPU:-0}" = 1 ]; then
  if ! smi=$(nvidia-smi 2>&1); then
    echo "$smi"
    case "$smi" in
      *"version mismatch"*) gm_fail "nvidia-smi: driver/library version mismatch" \
        "the loaded module is older than the installed driver: reboot the machine (gpumachine restart) and provision again" ;;
      *) gm_fail "nvidia-smi does not answer" "look at \"dmesg | grep -i nvrm\" on the host" ;;
    esac
  fi
  # Whole outputs first: `| head` would close the pipe early and fail nvidia-smi under pipefail.
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader)
  driver=${driver%%$'\n'*}
  names=$(nvidia-smi --query-gpu=name --format=csv,noheader)
  names=${names//$'\n'/,}
  cuda=$(echo "$smi" | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p')
  cuda=${cuda%%$'\n'*}
  ctk=$(nvidia-ctk --version 2>/dev/null | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)
  if [ "${GM_NVSWITCH:-0}" = 1 ]; then
    if systemctl is-active --quiet nvidia-fabricmanager; then
      fm=active
    else
      gm_fail "nvidia-fabricmanager is not running (CUDA reports 'system not ready' without it)" \
        "look at \"journalctl -u nvidia-fabricmanager\" on the host; its version must equal the driver's ($driver)"
    fi
  fi
fi
# stderr apart: sudo's own warnings ("unable to resolve host") are not part of the version.
docker_err=$(mktemp)
if ! docker_version=$($SUDO docker version --format '{{.Server.Version}}' 2>"$docker_err"); then
  cat "$docker_err"
  echo "$docker_version"
  gm_fail "the Docker daemon does not answer" "look at \"journalctl -u docker\" on the host"
fi
rm -f "$docker_err"
if [ "${GM_HAS_GPU:-0}" = 1 ] && [ -n "${GM_IMAGE:-}" ]; then
  echo "running nvidia-smi in $GM_IMAGE"
  if out=$($SUDO docker run --rm --gpus all "$GM_IMAGE" nvidia-smi 2>&1); then
    container=passed
  else
    echo "$out"
    case "$out" in
      *"pull access denied"* | *"dial tcp"* | *"no such host"* | *"TLS handshake timeout"* | \
        *"i/o timeout"* | *"toomanyrequests"* | *"manifest unknown"* | *"connection refused"*)
        container=no-pull
        gm_note "could not pull $GM_IMAGE, so the container check did not run; the host itself is ready" ;;
      *) gm_fail "a container cannot use the GPUs (docker run --gpus all $GM_IMAGE nvidia-smi)" \
        "look at /etc/docker/daemon.json (nvidia runtime) and run \"nvidia-ctk runtime configure --runtime=docker\"" ;;
    esac
  fi
fi
printf 'gm: json {"driver_version":%s,"cuda_version":%s,"gpus":%s,"toolkit_version":%s,"docker_version":%s,"container_check":%s,"fabricmanager":%s}\n' \
  "$(js "$driver")" "$(js "$cuda")" "$(js "$names")" "$(js "$ctk")" "$(js "$docker_version")" \
  "$(js "$container")" "$(js "$fm")"
