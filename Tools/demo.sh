#!/usr/bin/env bash
# The main job on an embedded default: write a duplicated exca cache the way 16 workers did, migrate it
# into a Casket store, show the space saved, and read the values back through the Python client,
# checking every key against what exca itself returns.
#
#   Tools/demo.sh [WORKDIR]        (default /tmp/casket-demo; removed and recreated)
#
# Sizes: CASKET_DEMO_KEYS (default 60) keys per writer, CASKET_DEMO_SHAPE (default 16,8000) per array.
set -euo pipefail
cd "$(dirname "$0")/.."
Tools/setup.sh release
export PATH="/opt/swift/usr/bin:$PATH"
CASKET="$PWD/.build/release/casket"
PY="$PWD/.venv/bin/python"
WORK="${1:-/tmp/casket-demo}"
KEYS="${CASKET_DEMO_KEYS:-60}"
SHAPE="${CASKET_DEMO_SHAPE:-16,8000}"
rm -rf "$WORK"
mkdir -p "$WORK"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "16 workers write the same $KEYS recordings (float32 $SHAPE) with the real exca 0.6.0, one more writes 12 others"
python3 Tools/exca-fixtures/generate.py --exca-version 0.6.0 --out "$WORK/exca-cache" \
    --writers 16 --keys "$KEYS" --solo-keys 12 --array-shape "$SHAPE" --deletions 2>&1 | grep -v WARNING | tail -3
ls "$WORK/exca-cache" | head -5; echo "..."
du -sh "$WORK/exca-cache"

step "what a migration would do (casket migrate --dry-run)"
"$CASKET" migrate "$WORK/exca-cache" --into "$WORK/store" --dry-run | head -20

step "migrate: every payload written once, index entries reference hashes"
"$CASKET" migrate "$WORK/exca-cache" --into "$WORK/store"

step "the store"
"$CASKET" stat --store "$WORK/store"
before=$(du -sb "$WORK/exca-cache" | cut -f1)
after=$(du -sb "$WORK/store" | cut -f1)
"$PY" - "$before" "$after" <<'PYEOF'
import sys
before, after = int(sys.argv[1]), int(sys.argv[2])
print(f"exca cache {before/1e6:.1f} MB  ->  casket store {after/1e6:.1f} MB: {before/after:.1f}x smaller, "
      f"{(before-after)/1e6:.1f} MB saved")
PYEOF

step "read a value back through the Python client (casket.CacheDict)"
"$PY" - "$WORK/store" <<'PYEOF'
import sys
sys.path.insert(0, "Tools/python")
import casket
cd = casket.CacheDict(sys.argv[1])
key = sorted(k for k in cd.keys() if k.startswith("emg:"))[0]
value = cd[key]
print(f"cd[{key!r}] -> {type(value).__name__} dtype={value.dtype} shape={value.shape} "
      f"(memory-mapped: {type(value).__name__ == 'memmap' or value.base is not None}), first values {value.ravel()[:4]}")
PYEOF

step "every key against exca's own value"
python3 Tools/exca-fixtures/dump_expected.py --exca-version 0.6.0 --cache "$WORK/exca-cache" \
    --out "$WORK/expected.jsonl" 2>&1 | grep -v WARNING || true
"$PY" Tools/exca-fixtures/dump_casket.py --store "$WORK/store" --out "$WORK/actual.jsonl"
python3 Tools/exca-fixtures/compare.py "$WORK/expected.jsonl" "$WORK/actual.jsonl"
echo "done: the store is in $WORK/store (try: $CASKET ls --store $WORK/store)"
