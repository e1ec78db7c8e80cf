"""Turns the JSON lines of keyed-writes and exca_cachedict_writes.py into the table of PERFORMANCE.md."""

import json
import statistics
import sys

rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]
exca_rows = [r for r in rows if r.get("tool") == "exca"]
exca = statistics.median(r["items_per_second"] for r in exca_rows)
swift = {r["name"]: r for r in rows if "name" in r}
raw = {False: swift["raw files, no fsync"]["items_per_second"], True: swift["raw files, fsync"]["items_per_second"]}
print("| measurement | count | items/s | vs raw file creation | vs exca 0.6.0 (no fsync) |")
print("| --- | --- | --- | --- | --- |")
print(f"| exca 0.6.0 CacheDict, median of 3 (it never fsyncs) | {exca_rows[0]['count']} | {exca:,.0f} | - | 1.00 |")
for name, r in swift.items():
    synced = "fsync" in name and "no fsync" not in name
    ratio_raw = r["items_per_second"] / raw[synced]
    print(f"| {name} | {r['count']} | {r['items_per_second']:,.0f} | {ratio_raw:.2f} | {r['items_per_second'] / exca:.2f} |")
