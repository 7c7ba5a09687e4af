#!/usr/bin/env bash
# Creates bench/.venv-rembg: rembg (CPU onnxruntime; the cli extra for `rembg s`, which
# bench/load.py runs as the peer server) for the peer measurements of
# bench/engine_speed.py. Only the benchmarks use it; Cutout itself never imports rembg.
# rembg is pointed at Cutout's models folder (REMBG_HOME and rembg's own U2NET_HOME), so it
# runs the very same u2net/u2netp files and never downloads: install them first with
#   python manage.py install_model u2netp && python manage.py install_model u2net
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=bench/.venv-rembg
REMBG_VERSION="${REMBG_VERSION:-2.0.86}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "rembg[cpu,cli]==${REMBG_VERSION}" "numpy<3" "pillow<13"
"$VENV/bin/python" -c "import rembg, onnxruntime; print('rembg', rembg.__version__ if hasattr(rembg, '__version__') else '?', 'onnxruntime', onnxruntime.__version__)"
