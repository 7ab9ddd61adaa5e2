#!/usr/bin/env bash
# Install (if needed) and run the whole test suite: lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/install_web.sh  # browser front end: Testing/web (Playwright on Debian's chromium)
source .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest -q "$@"
