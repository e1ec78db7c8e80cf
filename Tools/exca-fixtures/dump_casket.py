#!/usr/bin/env python3
"""Reads every key of a Casket store through the Python client (Tools/python) and prints canon() lines.

    python3 dump_casket.py --store STORE --out actual.jsonl [--exca-version V [--handlers core|all]]

With --exca-version it runs inside that exca version's venv (Tools/exca-fixtures/venv.sh), so that
numpy, pandas, nibabel and mne are the versions exca used to write the values; it never imports exca.
Without it, it runs in the current Python, which must have numpy, xxhash and lz4.

Output lines, sorted by key, in exactly the format of dump_expected.py (what exca itself returns), so
that compare.py, or a line-by-line comparison, checks a migrated store against exca:
{"key": k, "value": canon(v)} or {"key": k, "error": "..."}.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

import common  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--exca-version")
    p.add_argument("--handlers", choices=["core", "all"], default="core")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def dump(args: argparse.Namespace) -> int:
    import casket
    from canon import canon, dumps

    cache = casket.CacheDict(args.store)
    lines = []
    for key in sorted(cache.keys()):
        try:
            lines.append('{"key":' + dumps(key) + ',"value":' + dumps(canon(cache[key])) + "}")
        except Exception as error:  # one unreadable key is reported, not fatal
            lines.append('{"key":' + dumps(key) + ',"error":' + dumps(f"{type(error).__name__}: {error}") + "}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(line + "\n" for line in lines))
    return 0


def main() -> int:
    args = parse_args()
    if args.inner or not args.exca_version:
        return dump(args)
    py = common.ensure_venv(args.exca_version, args.handlers)
    # The client's own dependencies, beside exca's.
    if subprocess.run([py, "-c", "import xxhash, lz4"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "xxhash", "lz4"], check=True)
    os.execv(py, [py, str(Path(__file__).resolve()), "--inner", *sys.argv[1:]])
    return 0


if __name__ == "__main__":
    code = main()
    # The output is written and closed. Skip interpreter teardown: a handler library's C++ thread pool
    # (pyarrow, loaded for parquet values) can abort there ("terminate called without an active
    # exception", SIGABRT), which would fail a dump that succeeded.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
