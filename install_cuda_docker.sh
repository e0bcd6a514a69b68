#!/usr/bin/env bash
# Set up a GPU host (Ubuntu 20.04, 22.04 or 24.04) to run the benchmarks' gpu images with `docker run --gpus all`:
#   1. check the NVIDIA driver (nvidia-smi);
#   2. install Docker Engine from Docker's apt repository;
#   3. install the NVIDIA Container Toolkit (the obsolete nvidia-docker2 package is removed if present);
#   4. register its runtime with Docker, then check it by running nvidia-smi in a CUDA container.
# Idempotent: a step whose result is already there is skipped, so a second run changes nothing.
#
#   sudo ./install_cuda_docker.sh             set up the host
#   ./install_cuda_docker.sh --dry-run        print each step that would change the host, change nothing
#
# OS_RELEASE (default /etc/os-release) names the os-release file to read; the tests point it at a fake one.
set -euo pipefail

DOCKER_REPO=https://download.docker.com/linux/ubuntu
TOOLKIT_REPO=https://nvidia.github.io/libnvidia-container
# The check image is pinned by tag so that every host runs the same check. Its smallest flavour (base) is enough:
# the toolkit mounts the host driver's nvidia-smi into the container.
CHECK_IMAGE=nvidia/cuda:12.4.1-base-ubuntu22.04
SUPPORTED="20.04 22.04 24.04"

dry_run=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install_cuda_docker.sh: error: unknown argument '$arg' (use --dry-run or --help)" >&2; exit 2 ;;
  esac
done

say() { echo "install_cuda_docker.sh: $*"; }
die() { echo "install_cuda_docker.sh: error: $*" >&2; exit 1; }
# A step that changes the host: printed under --dry-run, run otherwise.
run() {
  if [ "$dry_run" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}
installed() { dpkg -s "$1" >/dev/null 2>&1; }

# --- the OS -------------------------------------------------------------------------------------------------
os_release=${OS_RELEASE:-/etc/os-release}
[ -r "$os_release" ] || die "cannot read $os_release to tell the OS"
# shellcheck disable=SC1090  # the file is the OS's, named at run time
. "$os_release"
if [ "${ID:-}" != ubuntu ] || [[ " $SUPPORTED " != *" ${VERSION_ID:-} "* ]]; then
  die "unsupported OS '${PRETTY_NAME:-${ID:-unknown}}': this script sets up Ubuntu ${SUPPORTED// /, } only"
fi
say "Ubuntu ${VERSION_ID} (${VERSION_CODENAME})"
if [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run it as root (sudo $0), or with --dry-run to see the steps"
fi

# --- 1. the driver ------------------------------------------------------------------------------------------
if ! nvidia-smi >/dev/null 2>&1; then
  die "no working NVIDIA driver (nvidia-smi is missing or failed): install one first, e.g. 'sudo ubuntu-drivers install' and reboot, then run this again"
fi
say "NVIDIA driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"

# --- 2. Docker Engine ---------------------------------------------------------------------------------------
if installed docker-ce; then
  say "Docker Engine: already installed"
else
  say "Docker Engine: installing from Docker's apt repository"
  run apt-get update
  run apt-get install -y ca-certificates curl
  run install -m 0755 -d /etc/apt/keyrings
  run curl -fsSL "$DOCKER_REPO/gpg" -o /etc/apt/keyrings/docker.asc
  run chmod a+r /etc/apt/keyrings/docker.asc
  line="deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/docker.asc] $DOCKER_REPO $VERSION_CODENAME stable"
  run bash -c "echo '$line' > /etc/apt/sources.list.d/docker.list"
  run apt-get update
  run apt-get install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin
fi

# --- 3. the NVIDIA Container Toolkit ------------------------------------------------------------------------
if installed nvidia-docker2; then
  say "nvidia-docker2 is obsolete (the toolkit replaces it): removing it"
  run apt-get remove -y nvidia-docker2
fi
if installed nvidia-container-toolkit; then
  say "NVIDIA Container Toolkit: already installed"
else
  say "NVIDIA Container Toolkit: installing from NVIDIA's apt repository"
  keyring=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  run bash -c "curl -fsSL $TOOLKIT_REPO/gpgkey | gpg --dearmor --yes -o $keyring"
  run bash -c "curl -fsSL $TOOLKIT_REPO/stable/deb/nvidia-container-toolkit.list | sed 's#deb https://#deb [signed-by=$keyring] https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list"
  run apt-get update
  run apt-get install -y nvidia-container-toolkit
fi

# --- 4. the runtime, and a check ----------------------------------------------------------------------------
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"nvidia"'; then
  say "Docker: the nvidia runtime is already registered"
else
  say "Docker: registering the nvidia runtime"
  run nvidia-ctk runtime configure --runtime=docker
  run systemctl restart docker
fi
say "checking: nvidia-smi inside $CHECK_IMAGE"
run docker run --rm --gpus all "$CHECK_IMAGE" nvidia-smi
say "done: run the gpu images with 'docker run --gpus all' (see each benchmark's README)"
