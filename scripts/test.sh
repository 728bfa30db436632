#!/usr/bin/env bash
# The test suite (CPU). Heavier end-to-end tests are marked `slow`: scripts/test.sh -m slow runs them.
# Arguments replace the default selection and are passed to pytest as they are (serial unless they add -n N).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
. .venv/bin/activate
if [ $# -eq 0 ]; then
  # The default selection on pytest-xdist workers, one per core up to 4 (CI: 2), one torch thread each
  # (tests/conftest.py); --dist loadfile keeps each file on one worker, so module fixtures are built once.
  workers=$(nproc 2>/dev/null || echo 2)
  set -- -m "not slow" -n "${DPAUDIT_TEST_WORKERS:-$((workers < 4 ? workers : 4))}" --dist loadfile
fi
exec python -m pytest "$@"
