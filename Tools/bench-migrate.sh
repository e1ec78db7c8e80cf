#!/usr/bin/env bash
# Migration benchmark: `casket migrate` of a 16-writer exca cache of about 2 GB against the physical
# floor measured in the same run: reading the unique bytes once and writing them once (cp of one
# duplicate writer's data file and of the solo writer's, then sync).
#
#   Tools/bench-migrate.sh          # env: BENCH_DIR (default /var/tmp/casket-bench-migrate), RUNS (5),
#                                   #      CASKET (prebuilt binary; default: swift build -c release)
# Needs hyperfine (apt-get install -y hyperfine). The cache is generated once with the real exca 0.6.0
# and kept in BENCH_DIR for later runs. Page cache is warm for the source in every run.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
runs="${RUNS:-5}"
dir="${BENCH_DIR:-/var/tmp/casket-bench-migrate}"
command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install -y hyperfine" >&2; exit 2; }
if [[ -z "${CASKET:-}" ]]; then
    (cd "$here" && swift build -c release --product casket >&2)
    CASKET="$(cd "$here" && swift build -c release --show-bin-path)/casket"
fi
cache="$dir/cache"
if [[ ! -f "$cache.fixture.json" ]]; then
    rm -rf "$cache"
    mkdir -p "$dir"
    python3 "$here/Tools/exca-fixtures/generate.py" --exca-version 0.6.0 --out "$cache" --writers 16 \
        --keys 200 --solo-keys 12 --array-shape 16,10000 --deletions >&2
fi
# One duplicate writer's data files and the solo writer's: every unique payload byte, read once.
read -r dup solo < <(python3 - "$cache" <<'PY'
import json, sys, pathlib
cache = pathlib.Path(sys.argv[1])
sizes = sorted(((p.stat().st_size, p.name) for p in (cache / "data").glob("*.data")), reverse=True)
print(sizes[0][1], sizes[-1][1])
PY
)
echo "# cache: $(du -sb "$cache" | cut -f1) bytes; floor copies data/$dup and data/$solo" >&2
out="$dir/out"
hyperfine --runs "$runs" --warmup 1 --export-json "$dir/migrate.json" \
    --prepare "rm -rf $out; sync" \
    -n "casket migrate (fsync)" "$CASKET migrate $cache --into $out --json" \
    -n "floor: cp unique data + sync" "mkdir -p $out && cp $cache/data/$dup $cache/data/$solo $out/ && sync" >&2
python3 - "$dir/migrate.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
m, f = results["casket migrate (fsync)"], results["floor: cp unique data + sync"]
print(f"| migrate, 16-writer cache | {m['median']:.3f} s | floor {f['median']:.3f} s | ratio {m['median']/f['median']:.2f} |")
PY
"$CASKET" migrate "$cache" --into "$out" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print({k: r[k] for k in r if k in ("keys","bytes_before","bytes_after","inflation_before","inflation_after","seconds","throughput_mib_s")})' || true
