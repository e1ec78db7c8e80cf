#!/usr/bin/env bash
# Scale benchmark (docs/PERFORMANCE.md 11, issue 12 point 6): N small values in packs, each step timed.
#
#   Tools/bench/scale.sh [N...]          default: 250000 500000 1000000 2000000
#   DIR=/tmp/casket-scale KEEP=1 ...     where the stores go; KEEP=1 keeps them (default: removed)
#   WRITER=python ...                    write and read through the Python client (bench_scale.py) instead
#
# For each N, a new store (`casket init --pack-max 65536 --durability group`), then with /usr/bin/time -v:
#   write  casket-testhelper scale-write: s/0..s/{N-1}, distinct payloads of 200-1,000 bytes, one
#          WriteSession (packed: below pack_max; not inlined: inline_max is 0)
#   read   casket-testhelper scale-read: a new process reads every key back (the first get reads the index)
#          (WRITER=python: Tools/python/bench/bench_scale.py write / read, one write() block, same sizes)
#   ls     casket ls > file
#   gc     casket gc --grace 1s --json (mark, sweep, packs)
#   fsck   casket fsck --json (re-hash every pack record, every live key's blobs found)
# Prints one line per step (wall and CPU seconds, peak RSS MB), then a markdown table: per N the wall
# time, CPU time (user + system: what a shared machine's load does not inflate) and peak RSS, and per
# larger N its CPU time per key over the smallest N's (1.00 = linear).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(250000 500000 1000000 2000000)
DIR=${DIR:-/tmp/casket-scale}
export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product casket >/dev/null
swift build -c release --product casket-testhelper >/dev/null
BIN=$(swift build -c release --show-bin-path)
mkdir -p "$DIR"
RESULTS="$DIR/results.tsv"
: >"$RESULTS"

measure() {  # N, step, command...: appends "N step wall_s rss_mb cpu_s" to the results
    local n=$1 step=$2; shift 2
    local log="$DIR/$n-$step"
    if ! /usr/bin/time -v "$@" >"$log.out" 2>"$log.time"; then
        echo "$step failed for N=$n:" >&2; tail -5 "$log.time" >&2; exit 1
    fi
    local wall rss cpu
    wall=$(awk '/Elapsed \(wall clock\)/ {n = split($NF, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$log.time")
    rss=$(awk '/Maximum resident set size/ {printf "%d", $NF / 1024}' "$log.time")
    cpu=$(awk '/User time|System time/ {s += $NF} END {print s}' "$log.time")
    printf '%-8s %-6s wall %8.2f s  cpu %8.2f s  peak RSS %6d MB\n' "$n" "$step" "$wall" "$cpu" "$rss"
    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$step" "$wall" "$rss" "$cpu" >>"$RESULTS"
}

for n in "${SIZES[@]}"; do
    store="$DIR/store-$n"
    rm -rf "$store"
    "$BIN/casket" init "$store" --pack-max 65536 --durability group >/dev/null
    if [[ ${WRITER:-swift} == python ]]; then
        measure "$n" write .venv/bin/python Tools/python/bench/bench_scale.py write "$store" "$n"
        sync
        measure "$n" read .venv/bin/python Tools/python/bench/bench_scale.py read "$store" "$n"
    else
        measure "$n" write "$BIN/casket-testhelper" scale-write "$store" "$n"
        sync
        measure "$n" read "$BIN/casket-testhelper" scale-read "$store" "$n"
    fi
    measure "$n" ls "$BIN/casket" ls --store "$store"
    [[ $(wc -l <"$DIR/$n-ls.out") -eq $n ]] || { echo "ls listed $(wc -l <"$DIR/$n-ls.out") keys, not $n" >&2; exit 1; }
    measure "$n" gc "$BIN/casket" gc --store "$store" --grace 1s --json
    measure "$n" fsck "$BIN/casket" fsck --store "$store" --json
    grep -o '"keys":[0-9]*' "$DIR/$n-fsck.out" | head -1
    echo "store-$n: $(du -sh "$store" | cut -f1), $(ls "$store/packs" | grep -c '\.pack$') packs, index $(du -sh "$store/index" | cut -f1)"
    [[ -n ${KEEP:-} ]] || rm -rf "$store"
done

# The table: per step and N, wall time, CPU time (user + system) and peak RSS; then, per N after the first,
# its CPU time per key over the previous N's (1.00 = linear; 2000000/1000000 is the issue's ratio).
table() {
    awk -F'\t' '
    { t[$1, $2] = $3; r[$1, $2] = $4; c[$1, $2] = $5; if (!($1 in seen)) { seen[$1] = 1; ns[++k] = $1 }
      if (!($2 in sseen)) { sseen[$2] = 1; steps[++m] = $2 } }
    END {
        printf "| step |"; for (i = 1; i <= k; i++) printf " N = %s |", ns[i]
        for (i = 2; i <= k; i++) printf " %s/%s |", ns[i], ns[i - 1]; printf "\n"
        printf "| --- |"; for (i = 1; i < 2 * k; i++) printf " --- |"; printf "\n"
        for (j = 1; j <= m; j++) {
            s = steps[j]; printf "| %s |", s
            for (i = 1; i <= k; i++) printf " %.1f s (CPU %.1f s), %d MB |", t[ns[i], s], c[ns[i], s], r[ns[i], s]
            for (i = 2; i <= k; i++) {
                base = c[ns[i - 1], s] / ns[i - 1]
                printf " %.2f |", (base > 0 ? (c[ns[i], s] / ns[i]) / base : 0)
            }
            printf "\n"
        }
    }' "$1"
}

table "$RESULTS"
