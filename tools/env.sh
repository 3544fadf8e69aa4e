# Sourced by reproduce.sh, tests/run.sh and .ci/run: makes sure the project's virtual
# environment exists and matches settings.ini, then activates it. Idempotent and quiet when
# nothing changed. Override the location with CORRMINE_VENV, the interpreter with PYTHON.
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="${CORRMINE_VENV:-$_root/.venv}"
_py="${PYTHON:-python3}"

if ! "$_py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "corrmine needs Python >= 3.10; '$_py' is $("$_py" --version 2>&1). Set PYTHON=/path/to/python3." >&2
    exit 1
fi
if [ ! -x "$_venv/bin/python" ]; then
    echo "[corrmine] creating the virtual environment $_venv"
    "$_py" -m venv "$_venv"
fi
# Reinstall only when the declared dependencies change.
_stamp="$_venv/.corrmine-deps"
_want="$(cat "$_root/settings.ini" "$_root/setup.py" "$_root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
    echo "[corrmine] installing corrmine and its dependencies into $_venv (first run: a few minutes)"
    "$_venv/bin/python" -m pip install --quiet --upgrade pip
    "$_venv/bin/python" -m pip install --quiet -e "$_root[dev]"
    echo "$_want" > "$_stamp"
fi
# shellcheck disable=SC1091
source "$_venv/bin/activate"
unset _root _venv _py _stamp _want
