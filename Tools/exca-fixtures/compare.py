#!/usr/bin/env python3
"""Compare two canon JSONL dumps (dump_expected.py format).

    python3 compare.py expected.jsonl actual.jsonl

Exit 0 when identical (same keys, same values/errors), else print each
differing key and the path of each differing field, exit 1.
With --ignore-error-text, two "error" lines match whatever their messages.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing as tp


def load(path: str) -> dict[tp.Any, dict[str, tp.Any]]:
    out: dict[tp.Any, dict[str, tp.Any]] = {}
    with open(path, encoding="utf8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            key = rec.get("key")
            if key in out:
                raise SystemExit(f"{path}:{n}: duplicate key {key!r}")
            out[key] = rec
    return out


def diff(a: tp.Any, b: tp.Any, path: str, out: list[str], limit: int = 20) -> None:
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append(f"{path}: {_short(a)} != {_short(b)}")
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: missing in expected")
            elif k not in b:
                out.append(f"{path}.{k}: missing in actual")
            else:
                diff(a[k], b[k], f"{path}.{k}", out, limit)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path}: {_short(a)} != {_short(b)}")


def _short(x: tp.Any) -> str:
    s = json.dumps(x, ensure_ascii=False)
    return s if len(s) < 120 else s[:117] + "..."


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("expected")
    p.add_argument("actual")
    p.add_argument("--ignore-error-text", action="store_true")
    args = p.parse_args()
    exp, act = load(args.expected), load(args.actual)
    bad = 0
    for key in sorted(set(exp) | set(act), key=lambda k: (k is None, str(k))):
        if key not in act:
            print(f"MISSING in actual: {key!r}")
            bad += 1
            continue
        if key not in exp:
            print(f"EXTRA in actual: {key!r}")
            bad += 1
            continue
        a, b = exp[key], act[key]
        if args.ignore_error_text and "error" in a and "error" in b:
            continue
        problems: list[str] = []
        diff(a, b, "", problems)
        if problems:
            bad += 1
            print(f"DIFF {key!r}:")
            for pr in problems:
                print(f"    {pr}")
    if bad:
        print(f"{bad} differing key(s) ({len(exp)} expected, {len(act)} actual)")
        return 1
    print(f"identical: {len(exp)} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
