#!/usr/bin/env bash
# The whole test suite: tests/ and every notebook in nbs/ (cells tagged `#| slow` or `#| gpu` are
# skipped; force them with: bash tests/run.sh --flags "slow gpu"). Sets up .venv on the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
python -m pytest "$@"
