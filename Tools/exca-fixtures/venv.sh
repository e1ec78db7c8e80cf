#!/usr/bin/env bash
# Create (or reuse) a virtualenv with a given exca version from PyPI.
#
#   Tools/exca-fixtures/venv.sh VERSION [core|all|suite]
#
# Prints the venv's python path on the last line of stdout.
# Venvs live under ${CASKET_VENV_DIR:-$HOME/.cache/casket/venvs}/exca-<version>.
# "all" additionally installs the optional handler deps (pandas, pyarrow,
# nibabel, mne, pybv) into the same venv; a marker file records what's in it.
# "suite" is its own venv, exca-<version>-suite: "all" plus what exca's own test
# modules import (torch, psutil, pytest), for Tools/python/tests/test_exca_suite.py.
# torch is the big one (docs/EXCA.md, "exca's own test suite"): PyPI's x86_64 wheel
# pulls ~2.5 GB of nvidia-* wheels (about 60 s here); a CPU build of the same
# version found through pip's own configuration (PIP_FIND_LINKS) is preferred by
# pip, since 2.13.0+cpu sorts after 2.13.0. CASKET_TORCH overrides the requirement.
set -euo pipefail

VERSION="${1:?usage: venv.sh VERSION [core|all|suite]}"
HANDLERS="${2:-core}"
PYTHON="${CASKET_PYTHON:-python3}"
ROOT="${CASKET_VENV_DIR:-$HOME/.cache/casket/venvs}"
VENV="$ROOT/exca-$VERSION"
if [ "$HANDLERS" = "suite" ]; then
  VENV="$ROOT/exca-$VERSION-suite"
fi

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

suite_for() {
  echo "${CASKET_TORCH:-torch==2.13.0} psutil pytest xxhash lz4"
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
if [ "$HANDLERS" != "core" ] && [ "$(cat "$VENV/.casket-all-ok" 2>/dev/null)" != "$EXTRAS" ]; then
  t0=$(date +%s)
  # shellcheck disable=SC2046
  "$VENV/bin/pip" install -q --disable-pip-version-check $EXTRAS $(pins_for "$VERSION") "exca==$VERSION" >&2
  echo "$EXTRAS" > "$VENV/.casket-all-ok"
  echo "[venv.sh] exca-$VERSION handler extras installed in $(( $(date +%s) - t0 ))s" >&2
fi
SUITE="$EXTRAS $(suite_for "$VERSION")"
if [ "$HANDLERS" = "suite" ] && [ "$(cat "$VENV/.casket-suite-ok" 2>/dev/null)" != "$SUITE" ]; then
  t0=$(date +%s)
  # shellcheck disable=SC2046
  "$VENV/bin/pip" install -q --disable-pip-version-check $SUITE $(pins_for "$VERSION") "exca==$VERSION" >&2
  echo "$SUITE" > "$VENV/.casket-suite-ok"
  echo "[venv.sh] exca-$VERSION test suite deps installed in $(( $(date +%s) - t0 ))s" >&2
fi
echo "$VENV/bin/python"
