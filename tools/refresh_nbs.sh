#!/usr/bin/env bash
# For developers: re-execute notebooks in place so that their committed outputs (figures, tables) are
# current, then export and clean them. Run before committing a notebook change. Default: all notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
[ $# -gt 0 ] || set -- nbs/[0-9]*.ipynb
nbdev_export
python tools/run_nbs.py --in-place --no-progress "$@"
nbdev_clean
nbdev_export
