#!/usr/bin/env bash
# The vendors' repositories as a mirror for the real test host: Docker's, NVIDIA's CUDA and
# Container Toolkit repositories laid out exactly as the vendors do (so --docker-mirror,
# --cuda-mirror and --toolkit-mirror point at OUT/docker, OUT/cuda, OUT/nvidia), plus the Debian
# archive's kernel packages the driver step asks for (OUT/debian, a stand-in for deb.debian.org).
# Filled with stand-in packages (apt-repo.sh deb) with the real names, versions, dependencies and
# pinning packages; their maintainer scripts only record what they were asked to do, and the few
# commands they ship (docker, nvidia-ctk, nvidia-smi) answer like the real ones without a daemon or
# a GPU. One throwaway key signs every repository. Checked against ../shared/spec/nvidia-facts-2026-12.md.
#
#   vendor-mirror.sh [--without-running-headers] OUT CODENAME DEBIAN_VERSION KERNEL [KERNEL_META]
#       e.g. OUT bookworm 12 "$(uname -r)" cloud-amd64. --without-running-headers leaves the
#       running kernel's headers out of the Debian archive (as Debian does once a newer ABI is out).
#
# Serve OUT with: python3 -m http.server PORT --bind 127.0.0.1 --directory OUT
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
running_headers=1
if [ "${1:-}" = --without-running-headers ]; then
  running_headers=0
  shift
fi
[ $# -ge 4 ] || {
  echo "usage: vendor-mirror.sh [--without-running-headers] OUT CODENAME DEBIAN_VERSION KERNEL [KERNEL_META]" >&2
  exit 1
}
OUT=$(realpath -m "$1")
CODENAME=$2
DEBVER=$3
KERNEL=$4
META=${5:-$(echo "$KERNEL" | sed -E 's/^[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9]+|\+deb[0-9]+)?-//')}
ARCH=$(dpkg --print-architecture)
case "$ARCH" in arm64) CUDA_ARCH=sbsa ;; *) CUDA_ARCH=x86_64 ;; esac

# The versions the stand-ins carry (docker-ce's epoch and suffix as Docker's repository has them).
DOCKER_VERSION="5:29.1.3-1~debian.$DEBVER~$CODENAME"
CONTAINERD_VERSION="2.2.1-1~debian.$DEBVER~$CODENAME"
BUILDX_VERSION="0.30.1-1~debian.$DEBVER~$CODENAME"
COMPOSE_VERSION="2.40.3-1~debian.$DEBVER~$CODENAME"
DRIVER_VERSION="595.112.07-1"
CTK_VERSION="1.20.1-1"

rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export GNUPGHOME="$WORK/gnupg"
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key "gpumachine vendor mirror <tests@localhost>" \
  ed25519 sign never 2>/dev/null
stop_agent() {
  local agent
  agent=$(gpg-connect-agent 'getinfo pid' /bye 2>/dev/null | sed -n 's/^D //p')
  if [ -n "$agent" ]; then kill "$agent"; fi
}
trap 'stop_agent; rm -rf "$WORK"' EXIT

# A file a stand-in ships, made from stdin with @VERSION@ replaced by $2: command_file NAME [VERSION]
command_file() {
  sed "s/@VERSION@/${2:-}/g" >"$WORK/$1"
  chmod 0755 "$WORK/$1"
  echo "$WORK/$1"
}
# A postinst that records like apt-repo.sh's and then does what the real one must for the host to
# work (the docker group that `usermod -aG docker` needs).
postinst_file() {
  {
    echo '#!/bin/sh'
    echo "echo \"$1 postinst \$*\" >>/var/log/gm-standin.log"
    cat
  } >"$WORK/$1.postinst"
  chmod 0755 "$WORK/$1.postinst"
  echo "$WORK/$1.postinst"
}
deb() { "$HERE/apt-repo.sh" deb "$@" >/dev/null; }
sign_release() {
  gpg --batch --yes --quiet --clearsign -o "$1/InRelease" "$1/Release"
  gpg --batch --yes --quiet --detach-sign --armor -o "$1/Release.gpg" "$1/Release"
}
# A flat repository (`deb URL/DIR/ /`), as NVIDIA publishes CUDA and the toolkit.
flat_repo() {
  (cd "$1" && apt-ftparchive packages . >Packages && apt-ftparchive release . >Release.tmp &&
    mv Release.tmp Release)
  sign_release "$1"
}
# A suite repository (`URIs: URL`, `Suites: SUITE`, `Components: COMPONENT`), as Docker and Debian.
suite_repo() {
  local root=$1 suite=$2 comp=$3 dir
  dir="$root/dists/$suite/$comp/binary-$ARCH"
  mkdir -p "$dir"
  (cd "$root" && apt-ftparchive packages "pool/$comp") >"$dir/Packages"
  (cd "$root/dists/$suite" && apt-ftparchive -o APT::FTPArchive::Release::Suite="$suite" \
    -o APT::FTPArchive::Release::Codename="$suite" \
    -o APT::FTPArchive::Release::Architectures="$ARCH all" \
    -o APT::FTPArchive::Release::Components="$comp" release .) >"$WORK/Release"
  mv "$WORK/Release" "$root/dists/$suite/Release"
  sign_release "$root/dists/$suite"
}

# ---------------------------------------------------------------- Docker: OUT/docker/debian
d="$OUT/docker/debian/pool/stable"
mkdir -p "$d"
gpg --batch --armor --export >"$OUT/docker/debian/gpg"
# docker_client VERSION: a stand-in docker client that answers like that Docker (no daemon behind
# it, so `docker version` answers only while docker.service runs, as with the real one).
docker_client() {
  command_file "docker-$1" "$1" <<'SH'
#!/bin/sh
case "$1" in
  --version) echo "Docker version @VERSION@, build f52814d"; exit 0 ;;
esac
systemctl is-active --quiet docker || {
  echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
  exit 1
}
case "$1" in
  version) echo "@VERSION@" ;;
  info)
    runtimes="io.containerd.runc.v2 runc"
    if grep -qs '"nvidia"' /etc/docker/daemon.json; then runtimes="$runtimes nvidia"; fi
    echo " Server Version: @VERSION@"
    echo " Runtimes: $runtimes" ;;
  *) echo "docker (stand-in): $*" >>/var/log/gm-standin.log ;;
esac
SH
}
docker_unit=$(command_file docker.service <<'UNIT'
[Unit]
Description=Docker Application Container Engine (stand-in)
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
UNIT
)
# Like the real ones, docker-ce's and docker.io's postinst make the docker group.
# shellcheck disable=SC2016 # $1 is the postinst's argument
docker_group='if [ "$1" = configure ] && ! getent group docker >/dev/null; then groupadd --system docker; fi'
docker_postinst=$(echo "$docker_group" | postinst_file docker-ce)
docker_cmd=$(docker_client 29.1.3)
deb "$d" docker-ce "$DOCKER_VERSION" --arch "$ARCH" \
  --depends "containerd.io (>= 1.7.27), docker-ce-cli" \
  --conflicts "docker (<< 1.5~), docker-engine, docker.io" \
  --file "$docker_unit=lib/systemd/system/docker.service" --file "$docker_postinst=DEBIAN/postinst"
deb "$d" docker-ce-cli "$DOCKER_VERSION" --arch "$ARCH" \
  --conflicts "docker (<< 1.5~), docker-engine, docker.io" --file "$docker_cmd=usr/bin/docker"
deb "$d" containerd.io "$CONTAINERD_VERSION" --arch "$ARCH" --provides "containerd, runc" \
  --conflicts "containerd, runc"
deb "$d" docker-buildx-plugin "$BUILDX_VERSION" --arch "$ARCH"
deb "$d" docker-compose-plugin "$COMPOSE_VERSION" --arch "$ARCH"
suite_repo "$OUT/docker/debian" "$CODENAME" stable

# ---------------------------------------------------------------- CUDA: OUT/cuda/debianN/ARCH
c="$OUT/cuda/debian$DEBVER/$CUDA_ARCH"
mkdir -p "$c"
gpg --batch --export >"$WORK/cuda-archive-keyring.gpg"
echo "deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] https://developer.download.nvidia.com/compute/cuda/repos/debian$DEBVER/$CUDA_ARCH/ /" \
  >"$WORK/cuda.list"
deb "$c" cuda-keyring 1.1-1 --file "$WORK/cuda-archive-keyring.gpg=usr/share/keyrings/cuda-archive-keyring.gpg" \
  --file "$WORK/cuda.list=etc/apt/sources.list.d/cuda-debian$DEBVER-$CUDA_ARCH.list"
# The pinning package holds every driver package at the branch (DIG "Recent Updates").
printf 'Package: nvidia-* libnvidia-* cuda-drivers*\nPin: version 595.*\nPin-Priority: 1000\n' \
  >"$WORK/pin"
deb "$c" nvidia-driver-pinning-595 "$DRIVER_VERSION" --file "$WORK/pin=etc/apt/preferences.d/nvidia-driver-pinning-595"
smi=$(command_file nvidia-smi <<'SH'
#!/bin/sh
echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
exit 9
SH
)
persistenced_unit=$(command_file nvidia-persistenced.service <<'UNIT'
[Unit]
Description=NVIDIA Persistence Daemon (stand-in)
[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
UNIT
)
deb "$c" nvidia-smi "$DRIVER_VERSION" --arch "$ARCH" --file "$smi=usr/bin/nvidia-smi"
deb "$c" libcuda1 "$DRIVER_VERSION" --arch "$ARCH"
deb "$c" nvidia-persistenced "$DRIVER_VERSION" --arch "$ARCH" \
  --file "$persistenced_unit=lib/systemd/system/nvidia-persistenced.service"
# Debian-style packages: the tools a compute host needs are only recommended (issue 10 #9).
deb "$c" nvidia-driver "$DRIVER_VERSION" --arch "$ARCH" --recommends \
  "nvidia-smi (= $DRIVER_VERSION), libcuda1 (= $DRIVER_VERSION), nvidia-persistenced (= $DRIVER_VERSION)"
deb "$c" nvidia-kernel-open-dkms "$DRIVER_VERSION" --arch "$ARCH"
deb "$c" nvidia-kernel-dkms "$DRIVER_VERSION" --arch "$ARCH"
deb "$c" nvidia-open "$DRIVER_VERSION" \
  --depends "nvidia-driver (= $DRIVER_VERSION), nvidia-kernel-open-dkms (= $DRIVER_VERSION)"
deb "$c" cuda-drivers "$DRIVER_VERSION" --arch "$ARCH" \
  --depends "nvidia-driver (= $DRIVER_VERSION), nvidia-kernel-dkms (= $DRIVER_VERSION)"
flat_repo "$c"

# ---------------------------------------------------------------- Toolkit: OUT/nvidia
t="$OUT/nvidia/stable/deb/$ARCH"
mkdir -p "$t"
gpg --batch --armor --export >"$OUT/nvidia/gpgkey"
# shellcheck disable=SC2016 # $(ARCH) is apt's, as in NVIDIA's file
echo 'deb https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /' \
  >"$OUT/nvidia/stable/deb/nvidia-container-toolkit.list"
ctk=$(command_file nvidia-ctk <<'SH'
#!/bin/sh
# Stand-in nvidia-ctk: the version, and `runtime configure` writing what the real one writes.
case "$1" in
  --version) echo "NVIDIA Container Toolkit CLI version 1.20.1"; echo "commit: 9f2a0c5"; exit 0 ;;
esac
config=/etc/docker/daemon.json
for a in "$@"; do case "$a" in --config=*) config=${a#*=} ;; esac; done
if [ "$1" = runtime ] && [ "$2" = configure ]; then
  mkdir -p "$(dirname "$config")"
  echo '{"runtimes":{"nvidia":{"args":[],"path":"nvidia-container-runtime"}}}' >"$config"
  echo "INFO[0000] Wrote updated config to $config"
fi
SH
)
deb "$t" nvidia-container-toolkit-base "$CTK_VERSION" --arch "$ARCH" --file "$ctk=usr/bin/nvidia-ctk"
deb "$t" libnvidia-container1 "$CTK_VERSION" --arch "$ARCH"
deb "$t" libnvidia-container-tools "$CTK_VERSION" --arch "$ARCH" --depends "libnvidia-container1 (>= $CTK_VERSION)"
deb "$t" nvidia-container-toolkit "$CTK_VERSION" --arch "$ARCH" \
  --depends "nvidia-container-toolkit-base (= $CTK_VERSION), libnvidia-container-tools (>= $CTK_VERSION)"
flat_repo "$t"

# ---------------------------------------------------------------- Debian's kernel packages: OUT/debian
k="$OUT/debian/pool/main"
mkdir -p "$k"
gpg --batch --export >"$OUT/debian/keyring.gpg"
if [ "$running_headers" = 1 ]; then
  deb "$k" "linux-headers-$KERNEL" 1 --arch "$ARCH"
  deb "$k" "linux-headers-$META" 1 --arch "$ARCH" --depends "linux-headers-$KERNEL"
else
  deb "$k" "linux-headers-$META" 1 --arch "$ARCH"
fi
deb "$k" "linux-image-$META" 1 --arch "$ARCH"
# The distro's Docker, a starting state the docker step must keep when it works.
dockerio_postinst=$(echo "$docker_group" | postinst_file docker.io)
dockerio_cmd=$(docker_client 20.10.24+dfsg1)
deb "$k" docker.io 20.10.24+dfsg1-1+deb12u1 --arch "$ARCH" --depends "containerd, runc" \
  --file "$dockerio_cmd=usr/bin/docker" --file "$docker_unit=lib/systemd/system/docker.service" \
  --file "$dockerio_postinst=DEBIAN/postinst"
deb "$k" containerd 1.6.20~ds1-1+b1 --arch "$ARCH"
deb "$k" runc 1.1.5+ds1-1+deb12u1 --arch "$ARCH"
suite_repo "$OUT/debian" "$CODENAME" main
