#!/usr/bin/env bash
# Run the test suite. First run: creates .venv and installs the pinned dependencies.
#
# Pass 1, always: embedded mode (SQLite + SqliteHuey), including the NiceGUI UI tests
#   and, when Chromium is installed, the real-browser tests in tests/e2e.
# Pass 2: server mode (PostgreSQL + Redis on 127.0.0.1), when both answer: everything but
#   the NiceGUI User-fixture tests; the browser tests then drive the app as deployed
#   (PostgreSQL, Redis, a separate worker process).
#
# With REQUIRE_SERVICES=1 (CI sets it), a missing PostgreSQL, Redis or Chromium fails
# the run instead of skipping. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv requirements-dev.txt
export PYTHONDONTWRITEBYTECODE=1

require="${REQUIRE_SERVICES:-0}"
if [ "$require" = "1" ]; then export REQUIRE_BROWSER=1; fi

echo "== pass 1: embedded mode (SQLite + SqliteHuey)"
TEST_BACKEND=sqlite .venv/bin/python -m pytest "$@"

if [ "$require" = "1" ] || .venv/bin/python scripts/services_up.py; then
    echo "== pass 2: server mode (PostgreSQL + Redis)"
    TEST_BACKEND=postgres .venv/bin/python -m pytest -m "not ui" "$@"
else
    echo "== pass 2 skipped: PostgreSQL or Redis is not reachable on 127.0.0.1 (set REQUIRE_SERVICES=1 to fail instead)"
fi
