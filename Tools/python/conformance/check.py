"""Compare what a reader resolves from a conformance vector with its ``expected.json``.

``check_python(vector_dir)`` reads the store with this package (IndexReader, CacheDict, Store);
``check_swift(vector_dir, casket_bin)`` reads a temp copy of it with the Swift CLI (``ls --json``,
``show``, ``get``, ``blob verify``). Both return a list of differences, one line per field
(empty: identical). Comparisons are strict about JSON types: ``1``, ``1.0`` and ``true`` differ.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import typing as tp
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = HERE.parent
REPO = PKG.parent.parent
if str(PKG) not in sys.path:
    sys.path.insert(0, str(PKG))
_FX = str(REPO / "Tools" / "exca-fixtures")
if _FX not in sys.path:
    sys.path.insert(0, _FX)

import casket  # noqa: E402
from canon import canon  # noqa: E402
from casket.values import _Decoder  # noqa: E402

VECTORS = HERE / "vectors"
WARNING = re.compile(r"^casket: warning: skipped (.+?\.jsonl(?:\.folding)?):(\d+): ")


def vector_names() -> list[str]:
    return sorted(p.name for p in VECTORS.iterdir() if (p / "expected.json").is_file()) if VECTORS.is_dir() else []


def load_expected(vector: Path) -> dict:
    return json.loads((vector / "expected.json").read_text(encoding="utf-8"))


def diff(expected: tp.Any, actual: tp.Any, path: str, out: list[str]) -> None:
    """Strict structural comparison: types (bool/int/float/str/list/dict) must match too."""
    if type(expected) is not type(actual):
        out.append(f"{path}: expected {_short(expected)} ({type(expected).__name__}), got {_short(actual)} ({type(actual).__name__})")
    elif isinstance(expected, dict):
        for k in sorted(set(expected) | set(actual)):
            if k not in actual:
                out.append(f"{path}.{k}: missing")
            elif k not in expected:
                out.append(f"{path}.{k}: unexpected field {_short(actual[k])}")
            else:
                diff(expected[k], actual[k], f"{path}.{k}", out)
    elif isinstance(expected, list):
        if len(expected) != len(actual):
            out.append(f"{path}: expected {len(expected)} items, got {len(actual)}")
        for i, (a, b) in enumerate(zip(expected, actual)):
            diff(a, b, f"{path}[{i}]", out)
    elif expected != actual:
        out.append(f"{path}: expected {_short(expected)}, got {_short(actual)}")


def _short(x: tp.Any) -> str:
    s = json.dumps(x, ensure_ascii=False)
    return s if len(s) < 100 else s[:97] + "..."


def _blob_files(store: Path) -> dict[str, int]:
    out = {}
    for dirpath, _dirs, files in os.walk(store / "blobs"):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(store))] = p.stat().st_size
    return dict(sorted(out.items()))


def _single_payload(store: "casket.Store", key: str, value: dict) -> tp.Optional[dict]:
    """The value's single payload as (size, xxh3) read through the Python client (None: 0 or >1)."""
    sys.path.insert(0, str(HERE))
    from make_vectors import payload_nodes  # the same walk the expectation used

    nodes = payload_nodes(value)
    if len(nodes) != 1:
        return None
    data = _Decoder(store, key, True).payload_bytes(nodes[0])
    assert data is not None
    return {"size": len(data), "xxh3": casket.hash_bytes(data)}


# --------------------------------------------------------------------------- Python reader


def check_python(vector: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", casket.MalformedLineWarning)  # compared through `problems`
        return _check_python(vector)


def _check_python(vector: Path) -> list[str]:
    exp = load_expected(vector)
    root = vector / "store"
    out: list[str] = []
    store = casket.Store(root)
    reader = casket.IndexReader(store, warn=False)
    reader.refresh()
    diff(sorted(exp["live"]), sorted(reader.keys()), "live keys", out)
    cd = casket.CacheDict(root)
    for key, want in exp["live"].items():
        e = reader.get(key)
        p = f"[{key}]"
        if e is None:
            out.append(f"{p}: not found")
            continue
        from make_vectors import value_size  # the same rule the expectation used

        got = {
            "ts": e.ts,
            "origin": {"writer": e.writer, "line": e.line},
            "blobs": e.blobs,
            "value": e.value,
            "size": value_size(e.value, e.blobs or []),
            "type": e.value.get("#type", "") if isinstance(e.value, dict) else "",
        }
        try:
            got["canonical"] = canon(cd[key])
        except casket.MissingDependencyError:
            # exca's handlers, mne...: not installed here; test_exca_handlers checks this vector where they are
            got["canonical"] = want["canonical"]
        except Exception as err:  # noqa: BLE001 - reported as a difference
            got["canonical"] = f"error: {err!r}"
        try:
            got["get"] = _single_payload(store, key, e.value)
        except Exception as err:  # noqa: BLE001
            got["get"] = f"error: {err!r}"
        diff(want, got, p, out)
    for key, want in exp["tombstones"].items():
        e = reader.winner(key)
        if e is None or not e.deleted:
            out.append(f"[{key}]: expected a winning tombstone, got {e!r}")
            continue
        diff(want, {"ts": e.ts, "origin": {"writer": e.writer, "line": e.line}}, f"[{key}] tombstone", out)
        if key in cd:
            out.append(f"[{key}]: deleted key is `in` the CacheDict")
    for key in exp["absent"]:
        if reader.winner(key) is not None:
            out.append(f"[{key}]: expected no line at all, got {reader.winner(key)!r}")
    problems = []
    for msg in reader.problems:
        path, line = re.match(r"^(.+?\.jsonl(?:\.folding)?):(\d+): ", msg).groups()  # type: ignore[union-attr]
        problems.append([os.path.basename(path), int(line)])
    diff(exp["problems"], sorted(problems), "problems", out)
    diff(exp["blob_files"], _blob_files(root), "blob_files", out)
    for rel in exp["blob_files"]:
        name = os.path.basename(rel).split(".")[0]
        try:
            store.verify_blob(name)
        except Exception as err:  # noqa: BLE001
            out.append(f"blob {rel}: {err}")
    return out


# --------------------------------------------------------------------------- Swift CLI


def _run(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], capture_output=True, timeout=60)


def check_swift(vector: Path, binary: str) -> list[str]:
    """Read a temp copy of the vector's store with the Swift CLI (the committed files stay untouched)."""
    exp = load_expected(vector)
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="casket-conformance-") as tmp:
        root = Path(tmp) / "store"
        shutil.copytree(vector / "store", root)
        r = _run(binary, "ls", "--store", str(root), "--json")
        if r.returncode != 0:
            return [f"casket ls failed ({r.returncode}): {r.stderr.decode()}"]
        listing = json.loads(r.stdout)
        problems = []
        for line in r.stderr.decode().splitlines():
            m = WARNING.match(line)
            if m:
                problems.append([os.path.basename(m.group(1)), int(m.group(2))])
            elif line.strip():
                out.append(f"casket ls: unexpected stderr {line!r}")
        diff(exp["problems"], sorted(problems), "problems (casket ls)", out)
        want_ls = [
            {"key": k, "size": v["size"], "type": v["type"], "blobs": len(v["blobs"]), "ts": v["ts"]}
            for k, v in sorted(exp["live"].items(), key=lambda kv: kv[0].encode())
        ]
        diff(
            sorted(want_ls, key=lambda d: d["key"]),
            sorted(listing, key=lambda d: d.get("key", "")),
            "ls --json",
            out,
        )
        for key, want in exp["live"].items():
            p = f"[{key}]"
            r = _run(binary, "show", "--store", str(root), "--", key)
            if r.returncode != 0:
                out.append(f"{p}: casket show failed ({r.returncode}): {r.stderr.decode().strip()}")
                continue
            shown = json.loads(r.stdout)
            expect_show = {k: want[k] for k in ("ts", "origin", "blobs", "value", "size")}
            expect_show["key"] = key
            diff(expect_show, shown, f"{p} show", out)
            r = _run(binary, "get", "--store", str(root), "--", key)
            if want["get"] is None:
                if r.returncode == 0:
                    out.append(f"{p}: casket get succeeded on a value without a single payload")
            elif r.returncode != 0:
                out.append(f"{p}: casket get failed ({r.returncode}): {r.stderr.decode().strip()}")
            else:
                diff(want["get"], {"size": len(r.stdout), "xxh3": casket.hash_bytes(r.stdout)}, f"{p} get", out)
        for key in list(exp["tombstones"]) + exp["absent"]:
            r = _run(binary, "show", "--store", str(root), "--json", "--", key)
            if r.returncode != 1 or json.loads(r.stdout or b"{}").get("error", {}).get("code") != "not_found":
                out.append(f"[{key}]: casket show should report not_found, got rc {r.returncode}: {r.stdout!r}")
        r = _run(binary, "blob", "verify", "--store", str(root))
        if r.returncode != 0:
            out.append(f"casket blob verify failed ({r.returncode}): {r.stdout.decode()} {r.stderr.decode()}")
    return out
