#!/usr/bin/env bash
# Installs what embedkit builds with, from Debian packages. Idempotent: installs only what is
# missing, and runs apt-get update only then. The CUDA toolkit is optional and not installed here:
# with nvcc (e.g. /usr/local/cuda/bin/nvcc) the CUDA backend is built, without it a CPU-only library.
# Usage: scripts/setup.sh [python]   ("python" adds what the Python package and its tests need:
# Debian's Python with venv and headers, and Debian's PyTorch, which the torch tests run against).
# Open MPI (libopenmpi-dev, openmpi-bin) builds the sharded tables and runs their tests under mpirun.
# ccache keeps compiled objects between runs (scripts/test.sh and demo.sh use it when present).
# clang-format (14, Debian's) formats the sources and checks them in CI (scripts/format.sh).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libspdlog-dev libfmt-dev nlohmann-json3-dev libdlpack-dev libcli11-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format libclang-rt-dev libomp-dev
  libopenmpi-dev openmpi-bin
)
for group in "$@"; do
  case $group in
    python) packages+=(python3 python3-dev python3-venv python3-torch) ;;
    *) echo "[setup] unknown package group '$group' (python)" >&2; exit 1 ;;
  esac
done

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[setup] all ${#packages[@]} Debian packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "[setup] need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "[setup] installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "[setup] done"
