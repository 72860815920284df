#!/usr/bin/env bash
# Run Product Importer in embedded mode (SQLite + in-process queue under ./data).
# First run: creates .venv and installs the pinned dependencies. Arguments go to main.py,
# e.g. `./run.sh --port 9000`, `./run.sh --native`, `./run.sh createuser alice`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv requirements.txt
exec .venv/bin/python main.py "$@"
