#!/usr/bin/env bash
# Whole-command benchmarks of the casket CLI against the plain tools, side by side, with hyperfine.
#
#   Tools/bench-blobs.sh            # from the repository root; prints a Markdown table of medians
#
# Environment: BENCH_DIR (scratch folder on the disk to measure, default a new folder under /var/tmp,
# removed at the end), SIZE_MIB (default 1024), RUNS (default 5), CASKET (a prebuilt binary; default:
# build with 'swift build -c release'). Needs hyperfine (apt-get install -y hyperfine) and python3.
#
# What is measured (docs/PERFORMANCE.md):
#   1. put NEW:  casket blob put of a file not yet stored, store durability fsync   vs  cp FILE DEST && sync
#   2. put HIT:  casket blob put of a file already stored (dedup hit), from page cache, as GB/s
#   3. get:      casket blob get HASH > /dev/null (verified read)                     vs  cat FILE > /dev/null
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
size_mib="${SIZE_MIB:-1024}"
runs="${RUNS:-5}"
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 2; }

if [[ -z "${CASKET:-}" ]]; then
    (cd "$here" && swift build -c release --product casket >&2)
    CASKET="$(cd "$here" && swift build -c release --show-bin-path)/casket"
fi
[[ -x "$CASKET" ]] || { echo "no casket binary at $CASKET" >&2; exit 2; }

owned=0
if [[ -z "${BENCH_DIR:-}" ]]; then
    BENCH_DIR="$(mktemp -d /var/tmp/casket-bench.XXXXXX)"
    owned=1
fi
cleanup() { if [[ $owned == 1 ]]; then rm -rf "$BENCH_DIR"; fi; }
trap cleanup EXIT
mkdir -p "$BENCH_DIR"
src="$BENCH_DIR/input.bin"
json="$BENCH_DIR/json"
mkdir -p "$json"

echo "# input: $size_mib MiB of random bytes in $src" >&2
head -c "$((size_mib << 20))" /dev/urandom > "$src"
cat "$src" > /dev/null   # into the page cache
hash="$(xxhsum -H2 "$src" | cut -d' ' -f1)"

# 1. A NEW blob, flushed: the store is emptied before each run (outside the timing), like cp's target.
"$CASKET" init --durability fsync "$BENCH_DIR/new" >/dev/null
mkdir -p "$BENCH_DIR/cp"
hyperfine --style basic --runs "$runs" --warmup 1 --export-json "$json/new.json" \
    --prepare "rm -rf '$BENCH_DIR/new/blobs/'* '$BENCH_DIR/new/tmp/'* '$BENCH_DIR/cp/'*; sync" \
    -n "casket blob put (new, fsync)" "'$CASKET' blob put --store '$BENCH_DIR/new' '$src' > /dev/null" \
    -n "cp + sync" "cp '$src' '$BENCH_DIR/cp/copy' && sync" >&2

# 2. A dedup hit: the blob is stored; put hashes the file (page cache), stats and freshens the blob.
"$CASKET" init --durability fsync "$BENCH_DIR/hit" >/dev/null
"$CASKET" blob put --store "$BENCH_DIR/hit" "$src" >/dev/null
hyperfine --style basic --runs "$((runs * 2))" --warmup 2 --export-json "$json/hit.json" \
    -n "casket blob put (dedup hit)" "'$CASKET' blob put --store '$BENCH_DIR/hit' '$src' > /dev/null" >&2

# 3. A verified read to /dev/null against cat, both from page cache.
blob="$BENCH_DIR/hit/blobs/${hash:0:2}/$hash"
cat "$blob" > /dev/null
hyperfine --style basic --runs "$((runs * 2))" --warmup 2 --export-json "$json/get.json" \
    -n "casket blob get > /dev/null" "'$CASKET' blob get --store '$BENCH_DIR/hit' $hash > /dev/null" \
    -n "cat > /dev/null" "cat '$blob' > /dev/null" >&2

python3 - "$json" "$size_mib" <<'PY'
import json, sys, statistics
d, mib = sys.argv[1], int(sys.argv[2])
gb = mib * (1 << 20) / 1e9
def medians(name):
    return {r["command"]: statistics.median(r["times"]) for r in json.load(open(f"{d}/{name}.json"))["results"]}
new, hit, get = medians("new"), medians("hit"), medians("get")
put_s, cp_s = new["casket blob put (new, fsync)"], new["cp + sync"]
hit_s = hit["casket blob put (dedup hit)"]
get_s, cat_s = get["casket blob get > /dev/null"], get["cat > /dev/null"]
print(f"| measurement ({mib} MiB) | casket median | baseline median | ratio (baseline time / casket time) | goal |")
print("| --- | --- | --- | --- | --- |")
print(f"| put of a new file, fsync vs cp + sync | {put_s:.3f} s ({gb/put_s:.2f} GB/s) | {cp_s:.3f} s ({gb/cp_s:.2f} GB/s) | {cp_s/put_s:.2f} | >= 0.85 |")
print(f"| put of a stored file (dedup hit) | {hit_s:.3f} s ({gb/hit_s:.2f} GB/s) | - | - | >= 5 GB/s |")
print(f"| get > /dev/null vs cat > /dev/null | {get_s:.3f} s ({gb/get_s:.2f} GB/s) | {cat_s:.3f} s ({gb/cat_s:.2f} GB/s) | {cat_s/get_s:.2f} | >= 0.80 |")
PY
