#!/usr/bin/env bash
# Open the notebooks in JupyterLab, with this project's environment as the kernel. Sets up .venv on the first
# run, as tests/run.sh does. Extra arguments go to `jupyter lab` (e.g. --port 8899, --no-browser, --ip 0.0.0.0).
#
#   bash tools/lab.sh
#
# The notebooks ask for the kernel `python3`. Putting .venv's kernel folder first on JUPYTER_PATH makes that
# name resolve to .venv's Python even when another `python3` kernel is registered for the user or the system.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/env.sh
export JUPYTER_PATH="$VIRTUAL_ENV/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
exec jupyter lab --ServerApp.root_dir="$PWD" "$@" nbs/
