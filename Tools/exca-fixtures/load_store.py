#!/usr/bin/env python3
"""Rebuild every value of a Casket store migrated from exca, as canon() JSON lines.

    python3 load_store.py --exca-version 0.6.0 --store /tmp/fx/store --out actual.jsonl [--handlers all]

A small reference reader of docs/FORMAT.md (index winner rule, value-tree nodes of section 6), written
independently of the Swift code, so that compare.py can check a migrated store against dump_expected.py's
output (what exca itself returns).  It runs inside the exca version's venv only to get the same numpy /
pandas / nibabel / mne as exca used; it never imports exca.  Blobs are read raw or LZ4-framed (lz4 module
needed only for the latter) and every blob's XXH3-128 is NOT checked here (the Swift tests do that).

Output lines, sorted by key: {"key": k, "value": canon(v)} or {"key": k, "error": "..."}.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exca-version", required=True)
    p.add_argument("--store", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--handlers", choices=["core", "all"], default="core")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


def winners(store: Path) -> dict[str, dict]:
    best: dict[str, tuple] = {}
    for path in sorted((store / "index").iterdir()):
        name = path.name
        if name.endswith(".jsonl"):
            writer = name[: -len(".jsonl")]
        elif name.endswith(".jsonl.folding"):
            writer = name[: -len(".jsonl.folding")]
        else:
            continue
        data = path.read_bytes()
        lines = data.split(b"\n")
        if not data.endswith(b"\n"):
            lines = lines[:-1]  # append in progress
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("sealed") or "key" not in rec:
                continue
            origin = (rec.get("w", writer).encode(), rec.get("n", n))
            rank = (rec["ts"], *origin)
            if rec["key"] not in best or rank > best[rec["key"]][0]:
                best[rec["key"]] = (rank, rec)
    return {k: rec for k, (_, rec) in best.items() if not rec.get("deleted")}


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, node: dict) -> bytes:
        if "inline" in node:
            return base64.b64decode(node["inline"])
        h = node["blob"]
        raw = self.root / "blobs" / h[:2] / h
        if raw.exists():
            data = raw.read_bytes()
        else:
            import lz4.frame  # type: ignore

            data = lz4.frame.decompress((self.root / "blobs" / h[:2] / (h + ".lz4")).read_bytes())
        if len(data) != node["size"]:
            raise ValueError(f"blob {h} has {len(data)} bytes, not {node['size']}")
        return data

    def materialize(self, node: dict, name: str) -> str:
        d = tempfile.mkdtemp(prefix="casket-load-")
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(self.blob(node))
        return path

    def array(self, node: dict):
        import numpy as np

        data = self.blob(node)
        return np.frombuffer(data, dtype=np.dtype(node["dtype"])).reshape(tuple(node["shape"]))

    def load(self, node: dict):
        t = node["#type"]
        if t in ("MemmapArray", "ContiguousMemmapArray", "TorchTensor"):
            return self.array(node)
        if t == "Json":
            return node["content"] if "content" in node else json.loads(self.blob(node))
        if t == "String":
            return self.blob(node).decode("utf8")
        if t == "Bytes":
            return self.blob(node)
        if t == "Pickle":
            return pickle.loads(self.blob(node))
        if t == "NumpyArray":
            import numpy as np

            return np.load(io.BytesIO(self.blob(node)))
        if t == "PandasDataFrame":
            import pandas as pd

            return pd.read_csv(io.BytesIO(self.blob(node)), index_col=0, keep_default_na=False, na_values=[""])
        if t == "ParquetPandasDataFrame":
            import pandas as pd

            return pd.read_parquet(io.BytesIO(self.blob(node)), dtype_backend="numpy_nullable")
        if t == "NibabelNifti":
            import nibabel

            return nibabel.load(self.materialize(node, "x.nii.gz"), mmap=True)
        if t == "MneRawFif":
            import mne

            return mne.io.read_raw_fif(self.materialize(node, "x-raw.fif"), verbose=False, allow_maxshield=False)
        if t == "MneRawBrainVision":
            import mne

            d = tempfile.mkdtemp(prefix="casket-bv-")
            vhdr = None
            for name, ref in node["files"].items():
                with open(os.path.join(d, name), "wb") as f:
                    f.write(self.blob(ref))
                if name.endswith(".vhdr"):
                    vhdr = os.path.join(d, name)
            return mne.io.read_raw_brainvision(vhdr, verbose=False)
        if t == "Auto":
            return self.tree(node["content"])
        if t == "AutoPickle":
            refs = {(r["filename"], r.get("offset")): r for r in node["refs"]}
            data = pickle.loads(self.blob(node))
            return self.pickled_tree(data, refs)
        if t == "DataDict":
            out = {k: self.load(v) for k, v in node["optimized"].items()}
            if node.get("pickled"):
                out.update(self.load(node["pickled"]))
            return out
        if t == "File":
            return self.blob(node)
        raise ValueError(f"unknown #type {t!r}")

    def tree(self, value):
        if isinstance(value, dict):
            if "#type" in value:
                return self.load(value)
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v) for v in value]
        return value

    def pickled_tree(self, value, refs):
        # exca's Auto._load_value: dicts and lists are walked (tuples are not)
        if isinstance(value, dict):
            if "#type" in value:
                info = dict(value)
                ref = refs[(info["filename"], info.get("offset"))]
                node = {"#type": info["#type"], "blob": ref["blob"], "size": ref["size"]}
                node.update({k: v for k, v in info.items() if k in ("dtype", "shape")})
                return self.load(node)
            return {k: self.pickled_tree(v, refs) for k, v in value.items()}
        if isinstance(value, list):
            return [self.pickled_tree(v, refs) for v in value]
        return value


def run_inner(args: argparse.Namespace) -> int:
    from canon import canon, dumps

    for mod in ("pandas", "nibabel", "mne"):
        try:
            __import__(mod)
        except Exception:
            pass
    store = Store(args.store)
    lines = []
    for key, rec in sorted(winners(args.store).items()):
        try:
            value = canon(store.load(rec["value"]))
            lines.append('{"key":' + dumps(key) + ',"value":' + dumps(value) + "}")
        except Exception as e:
            lines.append('{"key":' + dumps(key) + ',"error":' + dumps(f"{type(e).__name__}: {e}") + "}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(line + "\n" for line in lines))
    return 0


def main() -> int:
    args = parse_args()
    if args.inner:
        return run_inner(args)
    py = common.ensure_venv(args.exca_version, args.handlers)
    os.execv(py, [py, str(Path(__file__).resolve()), "--inner", *sys.argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
