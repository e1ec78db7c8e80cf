#!/usr/bin/env bash
# Garbage collection and fsck benchmark on a generated store (docs/PERFORMANCE.md).
#
#   Tools/bench-gc.sh [BLOBS] [ENTRIES] [DIR]      defaults: 1000000 1000000 /tmp/casket-bench-gc
#
# Builds release binaries, generates a store of BLOBS tiny blob files and ENTRIES index lines directly
# (casket-testhelper bench-fill: one blob in ten ends up unreferenced), then measures with /usr/bin/time -v:
#   1. casket gc --dry-run       (mark + full walk, nothing removed)
#   2. casket gc --grace 1s      (removes the unreferenced tenth)
#   3. casket gc --grace 1s      (steady state: nothing to remove)
#   4. casket fsck               (re-hash every blob), cold then warm, vs xxhsum -H2 over the same files warm
#
# Environment: BIN (a folder holding prebuilt casket and casket-testhelper, e.g. of an older commit, to
# compare builds in turn, each on a DIR of its own; default: build them with 'swift build -c release').
set -euo pipefail
cd "$(dirname "$0")/.."
BLOBS=${1:-1000000}
ENTRIES=${2:-1000000}
DIR=${3:-/tmp/casket-bench-gc}
export PATH="/opt/swift/usr/bin:$PATH"
if [[ -z "${BIN:-}" ]]; then
    swift build -c release >/dev/null
    BIN=$(swift build -c release --show-bin-path)
fi
[[ -x "$BIN/casket" && -x "$BIN/casket-testhelper" ]] || { echo "no casket and casket-testhelper in $BIN" >&2; exit 2; }
STORE="$DIR/store"

measure() {  # label, command...: prints wall time and peak RSS
    local label=$1; shift
    /usr/bin/time -v "$@" >"$DIR/$label.out" 2>"$DIR/$label.time" || true
    local wall rss
    wall=$(grep 'Elapsed (wall clock)' "$DIR/$label.time" | awk '{print $NF}')
    rss=$(grep 'Maximum resident set size' "$DIR/$label.time" | awk '{print $NF}')
    printf '%-14s wall %-10s peak RSS %6d MB\n' "$label" "$wall" $((rss / 1024))
}

if [[ ! -f "$STORE/.bench-$BLOBS-$ENTRIES" ]]; then
    rm -rf "$DIR"
    mkdir -p "$DIR"
    "$BIN/casket" init "$STORE" --durability none >/dev/null
    start=$(date +%s)
    "$BIN/casket-testhelper" bench-fill "$STORE" "$BLOBS" "$ENTRIES" | tail -1
    echo "generated in $(( $(date +%s) - start )) s"
    sleep 2
    touch "$STORE/.bench-$BLOBS-$ENTRIES"
fi
echo "store: $(du -sh "$STORE" | cut -f1), $(find "$STORE/blobs" -type f | wc -l) blob files, index $(du -sh "$STORE/index" | cut -f1)"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
measure gc-dry-run "$BIN/casket" gc --store "$STORE" --grace 1s --dry-run --json
grep -o '"duration_seconds":[0-9.]*\|"mark_seconds":[0-9.]*\|"swept":[0-9]*' "$DIR/gc-dry-run.out" | tr '\n' ' '; echo
measure gc "$BIN/casket" gc --store "$STORE" --grace 1s --json
grep -o '"duration_seconds":[0-9.]*\|"mark_seconds":[0-9.]*\|"swept":[0-9]*\|"live":[0-9]*' "$DIR/gc.out" | tr '\n' ' '; echo
measure gc-steady "$BIN/casket" gc --store "$STORE" --grace 1s --json
grep -o '"duration_seconds":[0-9.]*\|"mark_seconds":[0-9.]*\|"swept":[0-9]*\|"live":[0-9]*' "$DIR/gc-steady.out" | tr '\n' ' '; echo
measure fsck-cold "$BIN/casket" fsck --store "$STORE" --json
grep -o '"blobs_checked":[0-9]*\|"bytes_checked":[0-9]*\|"hash_seconds":[0-9.]*' "$DIR/fsck-cold.out" | tr '\n' ' '; echo
# Now that the page cache holds the blobs: fsck again and raw hashing of the same files with xxhsum -H2
# (XXH3-128, one process per 10000 files), in the same cache state.
measure fsck-warm "$BIN/casket" fsck --store "$STORE" --json
grep -o '"blobs_checked":[0-9]*\|"hash_seconds":[0-9.]*' "$DIR/fsck-warm.out" | tr '\n' ' '; echo
start=$(date +%s.%N)
find "$STORE/blobs" -type f -print0 | xargs -0 -n 10000 xxhsum -H2 >/dev/null 2>&1
end=$(date +%s.%N)
echo "xxhsum -H2    wall $(echo "$end - $start" | bc) s over the same files (warm)"
