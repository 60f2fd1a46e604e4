#!/usr/bin/env bash
# A signed apt repository on loopback for the real test host, and stand-in packages to fill it.
# Runs on the test machine (gpg is fine here; it is not inside the real host).
#
#   apt-repo.sh deb OUTDIR NAME VERSION [--depends D] [--recommends R] [--provides P] [--conflicts C]
#                 [--arch A] [--file SRC=DEST]... [--fail-postinst]
#       A stand-in .deb (OUTDIR/NAME_VERSION_A.deb; A defaults to "all") whose maintainer scripts
#       only record what they were asked to do: each appends "NAME SCRIPT ARGS..." to
#       /var/log/gm-standin.log in the host. --file puts the local file SRC at DEST (mode kept).
#       --fail-postinst makes its postinst exit 1 (a package that fails to configure).
#   apt-repo.sh build REPO SUITE COMPONENT=DEBDIR...
#       REPO/dists/SUITE/COMPONENT/binary-ARCH/Packages from the .debs in each DEBDIR, a Release
#       signed (InRelease and Release.gpg) with a throwaway key made in REPO/.gnupg, and the
#       public key as a binary keyring in REPO/keyring.gpg (for Signed-By in the host).
#
# Serve REPO with: python3 -m http.server PORT --bind 127.0.0.1 --directory REPO
set -euo pipefail

die() {
  echo "apt-repo.sh: $*" >&2
  exit 1
}

standin_deb() {
  [ $# -ge 3 ] || die "usage: deb OUTDIR NAME VERSION [options]"
  local out=$1 name=$2 version=$3 arch=all depends="" recommends="" provides="" conflicts="" fail=0
  local files=()
  shift 3
  while [ $# -gt 0 ]; do
    case "$1" in
      --depends) depends=$2; shift 2 ;;
      --recommends) recommends=$2; shift 2 ;;
      --provides) provides=$2; shift 2 ;;
      --conflicts) conflicts=$2; shift 2 ;;
      --arch) arch=$2; shift 2 ;;
      --file) files+=("$2"); shift 2 ;;
      --fail-postinst) fail=1; shift ;;
      *) die "deb: unknown option $1" ;;
    esac
  done
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/DEBIAN"
  {
    echo "Package: $name"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: gpumachine tests <tests@localhost>"
    [ -z "$depends" ] || echo "Depends: $depends"
    [ -z "$recommends" ] || echo "Recommends: $recommends"
    [ -z "$provides" ] || echo "Provides: $provides"
    [ -z "$conflicts" ] || echo "Conflicts: $conflicts"
    echo "Description: stand-in for $name in gpumachine's tests"
  } >"$tmp/DEBIAN/control"
  local script
  for script in preinst postinst prerm postrm; do
    {
      echo '#!/bin/sh'
      echo "echo \"$name $script \$*\" >>/var/log/gm-standin.log"
      if [ "$script" = postinst ] && [ "$fail" = 1 ]; then echo 'exit 1'; fi
    } >"$tmp/DEBIAN/$script"
    chmod 0755 "$tmp/DEBIAN/$script"
  done
  local f
  for f in "${files[@]}"; do
    mkdir -p "$tmp/$(dirname "${f#*=}")"
    cp -p "${f%%=*}" "$tmp/${f#*=}"
  done
  mkdir -p "$out"
  dpkg-deb --root-owner-group --build "$tmp" "$out/${name}_${version}_$arch.deb" >/dev/null
  rm -rf "$tmp"
  echo "$out/${name}_${version}_$arch.deb"
}

build_repo() {
  [ $# -ge 3 ] || die "usage: build REPO SUITE COMPONENT=DEBDIR..."
  local repo=$1 suite=$2 arch components=() spec comp dir
  shift 2
  arch=$(dpkg --print-architecture)
  mkdir -p "$repo"
  for spec in "$@"; do
    comp=${spec%%=*}
    dir=${spec#*=}
    components+=("$comp")
    mkdir -p "$repo/pool/$comp" "$repo/dists/$suite/$comp/binary-$arch"
    if compgen -G "$dir/*.deb" >/dev/null; then cp "$dir"/*.deb "$repo/pool/$comp/"; fi
    (cd "$repo" && apt-ftparchive packages "pool/$comp") >"$repo/dists/$suite/$comp/binary-$arch/Packages"
  done
  (cd "$repo/dists/$suite" && apt-ftparchive \
    -o APT::FTPArchive::Release::Suite="$suite" -o APT::FTPArchive::Release::Codename="$suite" \
    -o APT::FTPArchive::Release::Architectures="$arch all" \
    -o APT::FTPArchive::Release::Components="${components[*]}" release .) >"$repo/Release.tmp"
  mv "$repo/Release.tmp" "$repo/dists/$suite/Release"

  export GNUPGHOME="$repo/.gnupg"
  mkdir -p "$GNUPGHOME"
  chmod 0700 "$GNUPGHOME"
  if ! gpg --batch --list-secret-keys 2>/dev/null | grep -q sec; then
    gpg --batch --quiet --passphrase '' --quick-gen-key "gpumachine test repository <tests@localhost>" \
      ed25519 sign never 2>/dev/null
  fi
  gpg --batch --yes --quiet --clearsign -o "$repo/dists/$suite/InRelease" "$repo/dists/$suite/Release"
  gpg --batch --yes --quiet --detach-sign -o "$repo/dists/$suite/Release.gpg" "$repo/dists/$suite/Release"
  gpg --batch --yes --quiet --export -o "$repo/keyring.gpg"
  # gpg started an agent for this GNUPGHOME: end it by its pid.
  local agent
  agent=$(gpg-connect-agent 'getinfo pid' /bye 2>/dev/null | sed -n 's/^D //p')
  if [ -n "$agent" ]; then kill "$agent"; fi
}

case "${1:-}" in
  deb) shift; standin_deb "$@" ;;
  build) shift; build_repo "$@" ;;
  *) die "usage: apt-repo.sh deb|build ... (see the head of this file)" ;;
esac
