#!/usr/bin/env bash
# The web front end's dependencies (idempotent; after scripts/install.sh): the .[web] extra, slicer-layer-dm,
# Debian's chromium for the browser tests and OSMesa for off-screen VTK rendering. Nothing is downloaded at
# run time. slicer-layer-dm 2.0.0 (the only version trame-slicer 2.0.0 accepts) declares
# slicer-core==5.11.0.*, which would replace the slicer-core==5.13.31053.0 the project pins; its libraries
# load and render against 5.13 (Testing/web), so it goes in with --no-deps into .venv/slicer-layer-dm,
# which only the web session puts on sys.path (LandmarkWebLib.session.use_layer_dm).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source .venv/bin/activate
pip install --quiet --disable-pip-version-check -e ".[web]"
[ -d .venv/slicer-layer-dm/slicer_layer_dm ] || \
  pip install --quiet --disable-pip-version-check --no-deps --target .venv/slicer-layer-dm "slicer-layer-dm==2.0.0"
if ! command -v chromium >/dev/null || ! ldconfig -p | grep -q libOSMesa; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium libosmesa6 >/dev/null
fi
