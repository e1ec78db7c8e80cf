#!/usr/bin/env bash
# Sets everything up (Tools/setup.sh) and runs every test: the Swift suite (real files, real processes,
# real exca fixtures) and the Python client's suite, including its interoperability tests against the
# Swift binary. Exit code 0 only if all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
CASKET_PREFETCH_EXCA=1 Tools/setup.sh debug
export PATH="/opt/swift/usr/bin:$PATH"
export CASKET_BIN="$PWD/.build/debug/casket"

printf '\033[1m==> swift format lint\033[0m\n'
swift format lint --strict -r Sources Tests Package.swift

printf '\033[1m==> one door to the file system\033[0m\n'
Tools/check-door.sh

printf '\033[1m==> swift test\033[0m\n'
# Progress lines (build steps, started/passed tests) are dropped; failures, skips and summaries stay.
swift test 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]|^Test Case .* (started|passed)|^(✔|◇) (Test "|Test case|Suite .* started)'

printf '\033[1m==> Python client tests\033[0m\n'
.venv/bin/python -m pytest -q -rs Tools/python/tests
