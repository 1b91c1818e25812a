#!/usr/bin/env bash
# Set up a fresh machine and serve the dashboard on the built-in demo zoo (http://127.0.0.1:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec dif serve "$@"
