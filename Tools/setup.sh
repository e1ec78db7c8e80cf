#!/usr/bin/env bash
# Installs what Casket needs on a Debian machine and builds it. Safe to run again: it skips what is there.
#
#   Tools/setup.sh [debug|release]      (default: debug)
#
# - Debian packages: libxxhash-dev liblz4-dev pkg-config (the C libraries Casket wraps), xxhash (xxhsum,
#   for cross-checks), python3-venv where the Python lacks venv.
# - A Python virtual environment in .venv with numpy, xxhash, lz4, pytest and the Casket Python client
#   (Tools/python, editable). exca itself is installed later, per version, in its own venv under
#   ~/.cache/casket/venvs by Tools/exca-fixtures (the migration fixtures need the real exca from PyPI).
# - swift build (debug or release).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${1:-debug}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "setup: need root to run: $*" >&2; exit 1; fi
}

missing=()
for pkg in libxxhash-dev liblz4-dev pkg-config xxhash; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH" && break
    done
fi
command -v swift >/dev/null || { echo "setup: Swift 6.2 or later is needed (https://swift.org/install)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import numpy, xxhash, lz4, pytest, casket' 2>/dev/null; then
    say "installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q numpy xxhash lz4 pytest
    .venv/bin/python -m pip install -q -e ./Tools/python
fi

if [ "${CASKET_PREFETCH_EXCA:-}" = 1 ]; then
    mkdir -p .build
    say "making the exca venvs in the background (log: .build/prefetch-exca.log)"
    nohup Tools/exca-fixtures/prefetch.sh >.build/prefetch-exca.log 2>&1 &
fi

say "swift build -c $CONFIG"
swift build -c "$CONFIG" 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]' || true
test -x ".build/$CONFIG/casket" || { echo "setup: the build failed" >&2; exit 1; }
