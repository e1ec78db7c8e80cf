#!/usr/bin/env python3
"""Reads every key of a Casket store through the Python client and prints canon() JSON lines.

    python dump_casket.py --store STORE --out actual.jsonl

Run with a Python that has the client installed (the project's .venv, or PYTHONPATH=Tools/python).
Output lines, sorted by key, are comparable with dump_expected.py's (what exca itself returns):
{"key": k, "value": canon(v)} or {"key": k, "error": "..."}.
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

import casket  # noqa: E402
from canon import canon  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    cache = casket.CacheDict(args.store)
    with args.out.open("w") as out:
        for key in sorted(cache.keys()):
            try:
                line = {"key": key, "value": canon(cache[key])}
            except Exception as error:  # one unreadable key is reported, not fatal
                line = {"key": key, "error": f"{type(error).__name__}: {error}"}
            out.write(json.dumps(line, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
