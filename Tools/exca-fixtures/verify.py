#!/usr/bin/env python3
"""Check a generated fixture against exca's own dump.

    python3 verify.py DIR.fixture.json expected.jsonl

Checks: the keys exca lists are exactly the written keys minus the deleted
ones (plus the ones exca <=0.5.11 resurrects); the keys that fail to load are
exactly fixture["expected_unloadable"]; duplicates exist when writers > 1
(info-file layouts).  Exit 0 if all hold, else 1.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    fx = json.load(open(sys.argv[1], encoding="utf8"))
    lines = [json.loads(line) for line in open(sys.argv[2], encoding="utf8") if line.strip()]
    got = {r["key"] for r in lines}
    errors = {r["key"]: r["error"] for r in lines if "error" in r}
    want = (set(fx["keys_written"]) - set(fx["keys_deleted"])) | set(fx["deleted_keys_still_visible_to_exca"])
    ok = True
    if got != want:
        ok = False
        print("key set differs: missing", sorted(want - got), "extra", sorted(got - want))
    maybe = set(fx.get("maybe_unloadable", {}))
    errors = {k: v for k, v in errors.items() if k not in maybe or k in fx["expected_unloadable"]}
    if set(errors) != set(fx["expected_unloadable"]):
        ok = False
        for k in sorted(set(errors) - set(fx["expected_unloadable"])):
            print(f"unexpected load error {k!r}: {errors[k]}")
        for k in sorted(set(fx["expected_unloadable"]) - set(errors)):
            print(f"expected unloadable but loaded: {k!r}")
    scan = fx["info_scan_final"]
    if fx["family"] != "flat" and fx["writers"] > 1 and not fx.get("sweep") and scan["max_copies"] < 2:
        ok = False
        print("no duplicate entries found")
    print(f"{'OK' if ok else 'FAIL'}: exca {fx['exca_version']}: {len(got)} keys listed, "
          f"{len(got) - len(errors)} loaded, {len(errors)} unloadable as expected, "
          f"{len(scan['info_files'])} info files, max {scan['max_copies']} copies/key, "
          f"{len(scan['keys_with_duplicates'])} duplicated keys")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
