#!/usr/bin/env bash
# Installs, from Debian's packages, everything gpumachine needs to build, test and run its demo.
# A no-op when everything is present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libssh2-1-dev
  libcli11-dev libpugixml-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev
  openssh-server openssh-client python3 python3-botocore shellcheck awscli
  jupyter-notebook python3-jupyter-server hyperfine iproute2 procps
  mmdebstrap systemd-container apt-utils dpkg-dev gnupg python3-torch
  docker.io docker-compose rsync busybox-static
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${#missing[@]} Debian packages (the first time this takes minutes): ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
