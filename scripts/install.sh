#!/usr/bin/env bash
# Install the project and its test dependencies into ./.venv (idempotent).
# PyTorch: the CPU wheel torch==2.13.0 is installed first when no torch is present, so that the
# range in pyproject.toml is already satisfied and pip never pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
python -c "import torch" 2>/dev/null || pip install --quiet --disable-pip-version-check "torch==2.13.0"
# .[dask]: the tests run batches on a real local Dask cluster (detect --workers / --scheduler)
pip install --quiet --disable-pip-version-check -e ".[test,dask]"
# The KNEEL authors' building blocks, the reference implementation a knee test compares our network
# with. Only its torch modules are used; its declared requirements (TensorFlow, torchvision, another
# torch) are not, and would break this environment, hence --no-deps.
python -c "import deeppipeline" 2>/dev/null || \
  pip install --quiet --disable-pip-version-check --no-deps "deep-pipeline==0.2.5"
