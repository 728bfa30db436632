#!/usr/bin/env bash
# The test suite (CPU). Heavier end-to-end tests are marked `slow`: scripts/test.sh -m slow runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
. .venv/bin/activate
if [ $# -eq 0 ]; then
  set -- -m "not slow"
fi
exec python -m pytest "$@"
