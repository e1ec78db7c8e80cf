#!/usr/bin/env bash
# Create (or reuse) a virtualenv with a given exca version from PyPI.
#
#   Tools/exca-fixtures/venv.sh VERSION [core|all]
#
# Prints the venv's python path on the last line of stdout.
# Venvs live under ${CASKET_VENV_DIR:-$HOME/.cache/casket/venvs}/exca-<version>.
# "all" additionally installs the optional handler deps (pandas, pyarrow,
# nibabel, mne, pybv) into the same venv; a marker file records what's in it.
set -euo pipefail

VERSION="${1:?usage: venv.sh VERSION [core|all]}"
HANDLERS="${2:-core}"
PYTHON="${CASKET_PYTHON:-python3}"
ROOT="${CASKET_VENV_DIR:-$HOME/.cache/casket/venvs}"
VENV="$ROOT/exca-$VERSION"

# Pins known to work on Python 3.11 (see README.md).  Keep them in one place.
pins_for() {
  case "$1" in
    0.6.*|0.5.1[2-9]|0.5.2*) echo "numpy" ;;
    0.5.*|0.4.*|0.3.*|0.2.*) echo "numpy<2 pydantic>=2.5,<2.10" ;;
    0.1.*|0.0.*)             echo "numpy<2 pydantic>=2.5,<2.10" ;;
    *)                       echo "numpy" ;;
  esac
}
extra_for() {
  case "$1" in
    0.6.*|0.5.1[2-9]|0.5.2*) echo "pandas pyarrow nibabel mne pybv" ;;
    *)                       echo "pandas<2.3 pyarrow<20 nibabel mne pybv" ;;
  esac
}

mkdir -p "$ROOT"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.casket-core-ok" ]; then
  t0=$(date +%s)
  "$PYTHON" -m venv "$VENV" >&2
  # shellcheck disable=SC2046
  "$VENV/bin/pip" install -q --disable-pip-version-check "exca==$VERSION" $(pins_for "$VERSION") >&2
  touch "$VENV/.casket-core-ok"
  echo "[venv.sh] exca-$VERSION core installed in $(( $(date +%s) - t0 ))s" >&2
fi
EXTRAS="$(extra_for "$VERSION")"
if [ "$HANDLERS" = "all" ] && [ "$(cat "$VENV/.casket-all-ok" 2>/dev/null)" != "$EXTRAS" ]; then
  t0=$(date +%s)
  # shellcheck disable=SC2046
  "$VENV/bin/pip" install -q --disable-pip-version-check $EXTRAS $(pins_for "$VERSION") "exca==$VERSION" >&2
  echo "$EXTRAS" > "$VENV/.casket-all-ok"
  echo "[venv.sh] exca-$VERSION handler extras installed in $(( $(date +%s) - t0 ))s" >&2
fi
echo "$VENV/bin/python"
