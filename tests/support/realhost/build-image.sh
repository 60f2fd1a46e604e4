#!/usr/bin/env bash
# Builds the real test host's root filesystem: Debian (bookworm by default) from Debian's packages
# with mmdebstrap, with systemd, sshd, cloud-init, apt and a login user "admin" with passwordless
# sudo, like the Debian AMIs. Cached between runs, keyed by suite, package list and this script;
# built into a temporary directory and renamed into place, so a half-built image is never used.
#
#   build-image.sh            build when missing; print the image's path on stdout
#   build-image.sh --path     print the path the image has (or will have); build nothing
#
# Environment: GM_REALHOST_CACHE (default ~/.cache/gpumachine/realhost), GM_REALHOST_SUITE
# (bookworm), GM_REALHOST_SOURCES (the apt sources file to build from; default: this machine's
# Debian sources). Needs root, mmdebstrap and Debian's package archive.
#
# The image has no apt sources and no name server: nothing inside it can reach a non-loopback
# address. Tests give it loopback repositories (see apt-repo.sh). gnupg is left out on purpose:
# minimal Debian lacks it, and the provisioner must install what it needs.
set -euo pipefail

suite="${GM_REALHOST_SUITE:-bookworm}"
cache="${GM_REALHOST_CACHE:-${HOME:-/root}/.cache/gpumachine/realhost}"
packages=(
  systemd systemd-sysv dbus openssh-server cloud-init sudo ca-certificates curl python3 kmod
)
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

key=$( { echo "$suite"; printf '%s\n' "${packages[@]}"; cat "$here/build-image.sh" "$here/customize.sh"; } | sha256sum | cut -c1-16)
image="$cache/$suite-$key"

if [ "${1:-}" = --path ]; then
  echo "$image"
  exit 0
fi
if [ -d "$image" ]; then
  echo "$image"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "build-image.sh: building the real test host needs root (mmdebstrap in root mode)" >&2
  exit 1
fi
sources="${GM_REALHOST_SOURCES:-}"
if [ -z "$sources" ]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -s "$f" ]; then
      sources=$f
      break
    fi
  done
fi
if [ -z "$sources" ]; then
  echo "build-image.sh: no Debian apt sources on this machine; set GM_REALHOST_SOURCES" >&2
  exit 1
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build-$suite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "realhost: building the Debian $suite test host in $image (takes minutes)" >&2
started=$(date +%s)

mmdebstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --customize-hook="$here/customize.sh \"\$1\"" "$suite" "$tmp/root" "$sources" >&2

mv "$tmp/root" "$image"
echo "realhost: built in $(($(date +%s) - started)) s" >&2
echo "$image"
