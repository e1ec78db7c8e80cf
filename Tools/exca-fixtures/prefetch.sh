#!/usr/bin/env bash
# Makes every exca venv the tests use (Tools/exca-fixtures/venv.sh), in the order the tests need them:
# the Swift migration tests' versions first, then the levels only the Python tests need (exca's own test
# suite, with torch). Tools/setup.sh starts it in the background when CASKET_PREFETCH_EXCA=1 (Tools/test.sh
# sets it), so that downloads and unpacking overlap the Swift build and tests; venv.sh's per-version lock
# makes a test that needs a venv still being made wait for it, and a venv whose making failed here is
# made again by the test that needs it (nothing is marked done unless it was).
set -uo pipefail
cd "$(dirname "$0")"
for spec in "0.6.0 all" "0.5.29 all" "0.5.11 core" "0.4.8 core" "0.1.1 core" "0.6.0 suite" "0.5.29 suite"; do
    # shellcheck disable=SC2086
    ./venv.sh $spec >/dev/null || echo "[prefetch] venv.sh $spec failed; the tests will try again" >&2
done
