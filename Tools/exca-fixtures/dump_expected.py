#!/usr/bin/env python3
"""Dump what exca itself returns for every key of a cache, as canon() JSON lines.

    python3 dump_expected.py --exca-version 0.6.0 --cache /tmp/fx/cache --out expected.jsonl

exca's reader MUTATES the folder (orphan sweep, .exca-last-use), so the cache
is first copied to a temporary folder (large payload files hard-linked, see
common.copy_cache; --full-copy disables that) and the copy is read with that
version's own CacheDict inside its venv.  Output, sorted by key:

    {"key": k, "value": canon(v)}      or      {"key": k, "error": "Type: msg"}

If exca cannot even list the keys, one line {"key": null, "error": ...} is
written and the exit code is 3.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exca-version", required=True)
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--handlers", choices=["core", "all"], default=None,
                   help="venv extras (default: from DIR.fixture.json, else core)")
    p.add_argument("--full-copy", action="store_true", help="copy every byte (no hard links)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def _handlers_from_fixture(cache: Path) -> str:
    fx = cache.parent / f"{cache.name}.fixture.json"
    try:
        return json.loads(fx.read_text()).get("handlers", "core")
    except Exception:
        return "core"


def _line(key, field, payload) -> str:
    from canon import dumps

    return '{"key":' + dumps(key) + ',"' + field + '":' + dumps(payload) + "}"


def _load_all(cd, keys: list[str], copy: Path) -> list[str]:
    """Load keys in a forked child, one JSON line per key through a pipe.
    Loading some legacy entries segfaults (e.g. object-dtype memmaps read by
    exca 0.2.5): the crashing key gets an error line and a new child resumes
    with the next key."""
    from canon import canon

    out: list[str] = []
    i = 0
    while i < len(keys):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(r)
            with os.fdopen(w, "w", encoding="utf8") as f:
                for k in keys[i:]:
                    try:
                        v = cd[k]
                        line = _line(k, "value", canon(v))
                    except Exception as e:
                        msg = str(e).replace(str(copy), "<cache>")
                        line = _line(k, "error", f"{type(e).__name__}: {msg}")
                    v = None
                    f.write(line + "\n")
                    f.flush()
            os._exit(0)
        os.close(w)
        with os.fdopen(r, encoding="utf8") as f:
            got = [line.rstrip("\n") for line in f if line.endswith("\n")]
        _, status = os.waitpid(pid, 0)
        out += got
        i += len(got)
        if i < len(keys) and (not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0):
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            why = f"signal {sig}" if sig else f"exit {os.waitstatus_to_exitcode(status)}"
            out.append(_line(keys[i], "error", f"Crash: loading this key killed the process ({why})"))
            i += 1
        elif i < len(keys):
            raise RuntimeError("loader child ended early without crashing")
    return out


def run_inner(args: argparse.Namespace) -> int:
    for mod in ("pandas", "nibabel", "mne"):  # so legacy exca registers loaders
        try:
            __import__(mod)
        except Exception:
            pass
    from importlib.metadata import version

    from canon import canon
    from exca.cachedict import CacheDict

    if version("exca") != args.exca_version:
        print(f"wrong exca {version('exca')}", file=sys.stderr)
        return 2
    lines: list[str] = []
    rc = 0
    with tempfile.TemporaryDirectory(prefix="exca-dump-") as tmp:
        copy = Path(tmp) / args.cache.name
        common.copy_cache(args.cache, copy, hardlink_big=not args.full_copy)
        cd = CacheDict(copy)
        try:
            keys = sorted(cd.keys())
        except Exception as e:
            keys = []
            lines.append(_line(None, "error", f"{type(e).__name__}: {e}"))
            rc = 3
        lines += _load_all(cd, keys, copy)
        del cd
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(line + "\n" for line in lines))
    n_err = sum(1 for line in lines if json.loads(line).get("error"))
    print(f"{args.out}: {len(lines)} lines, {n_err} errors", file=sys.stderr)
    return rc


def main() -> int:
    args = parse_args()
    if args.inner:
        return run_inner(args)
    handlers = args.handlers or _handlers_from_fixture(args.cache)
    py = common.ensure_venv(args.exca_version, handlers)
    os.execv(py, [py, str(Path(__file__).resolve()), "--inner", *sys.argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
