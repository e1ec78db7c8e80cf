#!/usr/bin/env bash
# Keyed-cache write benchmark (docs/PERFORMANCE.md, section 3): COUNT values of SIZE bytes set through the
# Swift API (durability none and fsync, with and without inlining), beside the raw cost of the same number
# of file creations (create, write, rename) measured in the same process, and exca 0.6.0's CacheDict
# writing the same number of arrays of the same size, measured in the same run.
#
#   Tools/bench-keyed.sh [COUNT] [SIZE] [FSYNC_COUNT]      (default 20000 4096 2000)
#
# Environment: KEYED_WRITES (a prebuilt keyed-writes binary, e.g. of an older commit, to compare builds in
# turn; default: build it with 'swift build -c release --package-path Benchmarks').
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
count="${1:-20000}"; size="${2:-4096}"; fsync_count="${3:-2000}"
bin="${KEYED_WRITES:-}"
if [[ -z "$bin" ]]; then
    swift build -c release --package-path "$here/Benchmarks" --product keyed-writes >&2
    bin="$(swift build -c release --package-path "$here/Benchmarks" --show-bin-path)/keyed-writes"
fi
[[ -x "$bin" ]] || { echo "no keyed-writes binary at $bin" >&2; exit 2; }
py="$("$here/Tools/exca-fixtures/venv.sh" 0.6.0 | tail -1)"
scratch="$(mktemp -d /var/tmp/casket-bench-keyed.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
{
    CASKET_BENCH_DIR="$scratch/swift" "$bin" "$count" "$size" "$fsync_count"
    for _ in 1 2 3; do "$py" "$here/Tools/bench/exca_cachedict_writes.py" --count "$count" --size "$size" --folder "$scratch/exca"; done
} | python3 "$here/Tools/bench/keyed_table.py"
