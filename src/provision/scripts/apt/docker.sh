#!/usr/bin/env bash
# Step "docker" on Ubuntu and Debian: a working Docker engine, enabled at boot, the SSH user in the
# docker group. An engine that works (Docker's docker-ce, or the distro's docker.io) is kept:
# joining the group needs no reinstall. Otherwise Docker Engine comes from Docker's own apt
# repository (the distro's docker.io lags and conflicts), downloaded and verified before anything
# it replaces is removed, so a failed download leaves the host as it was.
# plan: (an installed engine starts) systemctl enable --now docker; usermod -aG docker ${GM_USER}; nothing removed
# plan: curl -fsSL ${GM_DOCKER_REPO}/${GM_OS_ID}/gpg -o /etc/apt/keyrings/docker.asc; write /etc/apt/sources.list.d/docker.sources
# plan: apt-get install --download-only docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
# plan: then apt-get remove docker.io docker-compose docker-compose-v2 docker-doc podman-docker containerd runc (where installed)
# plan: apt-get install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin (with recommends)
# plan: systemctl enable --now docker; usermod -aG docker ${GM_USER}
set -euo pipefail # also set by lib.sh, which is sent first
in_group() { [ "$(id -u "$GM_USER")" -eq 0 ] || id -nG "$GM_USER" | tr ' ' '\n' | grep -qx docker; }
docker_version() { docker --version 2>/dev/null | sed -n 's/^Docker version \([^,]*\).*/\1/p'; }
engine=""
for p in docker-ce docker.io; do
  if gm_deb_installed "$p"; then
    engine=$p
    break
  fi
done
if [ -n "$engine" ] && systemctl is-enabled --quiet docker 2>/dev/null &&
  systemctl is-active --quiet docker 2>/dev/null && in_group; then
  gm_done "docker $(docker_version)"
fi

if [ -n "$engine" ] && $SUDO systemctl enable --now docker; then
  echo "keeping the installed $engine: it runs"
else
  if [ -n "$engine" ]; then echo "the installed $engine does not start: replacing it with Docker Engine"; fi
  gm_need curl
  # shellcheck disable=SC1091 # the host's file, read at run time.
  codename=$(. "$R/etc/os-release" && echo "${UBUNTU_CODENAME:-$VERSION_CODENAME}")
  $SUDO install -m 0755 -d "$R/etc/apt/keyrings"
  curl -fsSL "$GM_DOCKER_REPO/$GM_OS_ID/gpg" | gm_write /etc/apt/keyrings/docker.asc 0644
  gm_write /etc/apt/sources.list.d/docker.sources 0644 <<SOURCES
Types: deb
URIs: $GM_DOCKER_REPO/$GM_OS_ID
Suites: $codename
Components: stable
Architectures: $(dpkg --print-architecture)
Signed-By: /etc/apt/keyrings/docker.asc
SOURCES
  gm_apt update
  packages=(docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin)
  # Downloaded and checked against the repository's signature first: nothing is removed when
  # this fails.
  gm_apt install --download-only "${packages[@]}"
  conflicts=()
  for p in docker.io docker-compose docker-compose-v2 docker-doc podman-docker containerd runc; do
    if gm_deb_installed "$p"; then conflicts+=("$p"); fi
  done
  if [ ${#conflicts[@]} -gt 0 ]; then gm_apt remove "${conflicts[@]}"; fi
  # With recommends: docker-ce's (apparmor, iptables, pigz...) are what its daemon expects.
  gm_apt install "${packages[@]}"
  for p in "${packages[@]}"; do
    gm_deb_installed "$p" || gm_fail "$p is not installed after apt-get installed Docker Engine" \
      "look at /var/log/apt/term.log on the host, then provision again"
  done
  $SUDO systemctl enable --now docker
fi
if ! in_group; then $SUDO usermod -aG docker "$GM_USER"; fi
gm_applied "docker $(docker_version)"
