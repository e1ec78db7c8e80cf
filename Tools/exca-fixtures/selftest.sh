#!/usr/bin/env bash
# Small end-to-end check of every covered exca version:
#   generate -> dump_expected -> verify -> compare (identical / modified).
# usage: Tools/exca-fixtures/selftest.sh [VERSION...] ; HANDLERS=all to add extras
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
HANDLERS="${HANDLERS:-core}"
VERSIONS=("$@"); [ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(0.6.0 0.5.29 0.5.12 0.5.11 0.4.8 0.2.5 0.1.1)
TMP="$(mktemp -d /tmp/exca-selftest.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
for v in "${VERSIONS[@]}"; do
  out="$TMP/$v/cache"
  python3 "$HERE/generate.py" --exca-version "$v" --out "$out" --writers 4 --keys 6 \
      --deletions --unloadable --handlers "$HANDLERS" 2>&1 | grep -v WARNING
  python3 "$HERE/dump_expected.py" --exca-version "$v" --cache "$out" --out "$TMP/$v/expected.jsonl" 2>&1 | grep -v WARNING
  python3 "$HERE/verify.py" "$out.fixture.json" "$TMP/$v/expected.jsonl"
  python3 "$HERE/compare.py" "$TMP/$v/expected.jsonl" "$TMP/$v/expected.jsonl" >/dev/null
  sed '0,/"sha256":"/s//"sha256":"X/' "$TMP/$v/expected.jsonl" > "$TMP/$v/modified.jsonl"
  if python3 "$HERE/compare.py" "$TMP/$v/expected.jsonl" "$TMP/$v/modified.jsonl" >/dev/null; then
    echo "compare.py missed a modification ($v)"; exit 1
  fi
done
echo "selftest OK: ${VERSIONS[*]}"
