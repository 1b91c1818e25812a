#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
python3 -m ruff check .  # lint first: style and pyflakes errors fail the run
exec python3 -m pytest -q -p no:cacheprovider "$@"
