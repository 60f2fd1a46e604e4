#!/usr/bin/env bash
# Step "docker" on Ubuntu and Debian: Docker Engine from Docker's own apt repository (the distro's
# docker.io lags and conflicts), enabled at boot, the SSH user in the docker group.
# plan: apt-get remove docker.io docker-compose docker-compose-v2 docker-doc podman-docker containerd runc (where installed)
# plan: curl -fsSL https://download.docker.com/linux/${GM_OS_ID}/gpg -o /etc/apt/keyrings/docker.asc; write /etc/apt/sources.list.d/docker.sources
# plan: apt-get install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
# plan: systemctl enable --now docker; usermod -aG docker ${GM_USER}
set -euo pipefail # also set by lib.sh, which is sent first
in_group() { [ "$(id -u "$GM_USER")" -eq 0 ] || id -nG "$GM_USER" | tr ' ' '\n' | grep -qx docker; }
if gm_deb_installed docker-ce && systemctl is-enabled --quiet docker 2>/dev/null && in_group; then
  gm_done "docker $(docker --version 2>/dev/null | sed -n 's/^Docker version \([^,]*\).*/\1/p')"
fi
conflicts=()
for p in docker.io docker-compose docker-compose-v2 docker-doc podman-docker containerd runc; do
  if gm_deb_installed "$p"; then conflicts+=("$p"); fi
done
if [ ${#conflicts[@]} -gt 0 ]; then gm_apt remove "${conflicts[@]}"; fi

if ! gm_deb_installed docker-ce; then
  gm_need curl
  # shellcheck disable=SC1091 # the host's file, read at run time.
  codename=$(. "$R/etc/os-release" && echo "${UBUNTU_CODENAME:-$VERSION_CODENAME}")
  $SUDO install -m 0755 -d "$R/etc/apt/keyrings"
  curl -fsSL "https://download.docker.com/linux/$GM_OS_ID/gpg" | gm_write /etc/apt/keyrings/docker.asc 0644
  gm_write /etc/apt/sources.list.d/docker.sources 0644 <<SOURCES
Types: deb
URIs: https://download.docker.com/linux/$GM_OS_ID
Suites: $codename
Components: stable
Architectures: $(dpkg --print-architecture)
Signed-By: /etc/apt/keyrings/docker.asc
SOURCES
  gm_apt update
  gm_apt_install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
fi
$SUDO systemctl enable --now docker
if ! in_group; then $SUDO usermod -aG docker "$GM_USER"; fi
gm_applied "docker $(docker --version | sed -n 's/^Docker version \([^,]*\).*/\1/p')"
