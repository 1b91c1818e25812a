#!/usr/bin/env bash
# Install everything DIF Lineage needs on a fresh Debian machine (idempotent).
#   bash scripts/install.sh            # engine + dashboard (the [dashboard] extra, which brings [provenance])
#   bash scripts/install.sh --test     # + test tools, ruff, Ray (the cluster tests) and the Chromium the browser tests drive
# The engine alone (dif train, dif detect, no dashboard) is `pip install .` with no extras.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
apt_install() {  # Debian packages, only when missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
# OpenCV (pulled in by invisible-watermark, the SD watermark decoder) needs libGL and glib at import.
apt_install libgl1 libglib2.0-0
# Real photographs for the default reference pool mu_real is calibrated on (engine/data/reference_pool.py).
apt_install mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04
# The CPU build of torch (a plain `pip install torch` may pull a multi-GB CUDA build).
$PY -c "import torch" 2>/dev/null || $PY -m pip install -q torch==2.13.0
if [ "${1:-}" = "--test" ]; then
  $PY -m pip install -q -e ".[dashboard,test,cluster]"
  apt_install chromium
else
  $PY -m pip install -q -e ".[dashboard]"
fi
