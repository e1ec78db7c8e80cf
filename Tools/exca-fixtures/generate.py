#!/usr/bin/env python3
"""Generate a realistic exca CacheDict cache with the REAL exca from PyPI.

    python3 generate.py --exca-version 0.6.0 --out /tmp/fx/cache --writers 4 --keys 6

Run with the system python3: it creates/reuses a venv for the exca version
(venv.sh) and re-executes itself inside it.  In the venv:

  * N "shared" writer processes (fork) each build CacheDicts on the folder,
    call keys(), wait at a barrier, then write the SAME keys with
    byte-identical values (derived from seed+key) -> N duplicate copies,
    one {host}-{tid}-info.jsonl (+ data files) per writer;
  * concurrently, one "solo" writer writes disjoint keys;
  * with --deletions: a "tiny" writer writes one key, then a separate process
    deletes a few keys through exca's own ``del cd[key]``.

Metadata goes to DIR.fixture.json (outside the cache folder).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import traceback
import typing as tp
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

WEIRD_KEY = (
    "weird/key\twith spaces/and\\back/slashes/"
    + "x" * 30
    + "/Ünïcødé 漢字/"
    + "y" * 30
)  # > 80 chars, slashes, tab, spaces, backslash, non-ascii


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exca-version", required=True)
    p.add_argument("--out", required=True, type=Path, help="cache folder to create (must not exist or be empty)")
    p.add_argument("--writers", type=int, default=4, help="concurrent duplicate writers")
    p.add_argument("--keys", type=int, default=6, help="EMG array keys written by every shared writer")
    p.add_argument("--solo-keys", type=int, default=2, help="EMG array keys written by the solo writer")
    p.add_argument("--array-shape", default="16,2000", help="shape of the EMG arrays, e.g. 16,2000")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--handlers", choices=["core", "all"], default="core",
                   help="all = also pandas/parquet/nifti/mne handlers (installs extras)")
    p.add_argument("--deletions", action="store_true", help="delete a few keys with exca's del cd[key]")
    p.add_argument("--sweep", action="store_true",
                   help="with --deletions, also delete the FIRST key of every shared writer "
                        "(triggers exca's orphan sweep of N-1 writers; AutoPickle may dangle)")
    p.add_argument("--unloadable", action="store_true",
                   help="also write object-dtype and structured-dtype arrays (written, never loadable)")
    p.add_argument("--no-catalog", action="store_true",
                   help="only EMG arrays (fast benchmark caches)")
    p.add_argument("--legacy-cache-type", default="NumpyArray",
                   help="0.1.x only: the single cache type of the folder")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------------------
# deterministic values
# ---------------------------------------------------------------------------


def _rng(seed: int, key: str) -> tp.Any:
    import numpy as np

    h = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def make_value(recipe: str, key: str, seed: int, shape: tuple[int, ...]) -> tp.Any:
    import numpy as np

    r = _rng(seed, key)
    if recipe == "emg":
        x = r.standard_normal(shape, dtype=np.float32)
        t = np.arange(shape[-1], dtype=np.float32) / 2000.0
        env = (1.0 + 0.8 * np.sin(2 * np.pi * 1.3 * t)).astype(np.float32)
        x *= env
        x *= np.float32(50e-6)
        return x
    if recipe.startswith("arr:"):
        kind = recipe[4:]
        if kind == "uint8":  # odd size: next arrays land on unaligned offsets
            return r.integers(0, 256, 101).astype(np.uint8)
        if kind == "int16":
            return r.integers(-3000, 3000, (7, 13)).astype(np.int16)
        if kind == "float32":
            return r.standard_normal((5, 37)).astype(np.float32)
        if kind == "bool":
            return r.random(33) > 0.5
        if kind == "complex64":
            return (r.standard_normal(10) + 1j * r.standard_normal(10)).astype(np.complex64)
        if kind == "float16":
            return r.standard_normal((3, 11)).astype(np.float16)
        if kind == "f4be":
            return r.standard_normal(17).astype(">f4")
        if kind == "0d":
            return np.array(r.standard_normal())
        if kind == "float64_3d":
            return r.standard_normal((2, 3, 4))
        if kind == "int64":
            return r.integers(-(2**40), 2**40, 9).astype(np.int64)
        if kind == "fortran":
            return np.asfortranarray(r.integers(0, 1000, (4, 6)).astype(np.int32))
        if kind == "noncontig":
            return r.standard_normal((8, 5)).astype(np.float32)[::2, ::-1]
        if kind == "unicode":
            return np.array(["ab", "cde", "f"])
        if kind == "bytes":
            return np.array([b"ab", b"c"])
        if kind == "i8be":
            return r.integers(-1000, 1000, 6).astype(">i8")
        if kind == "object":
            return np.array([1, "a", None], dtype=object)
        if kind == "struct":
            a = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])
            a["a"] = r.integers(0, 100, 3)
            a["b"] = r.standard_normal(3)
            return a
        raise ValueError(recipe)
    if recipe == "str":
        return f"label for {key}"
    if recipe == "unicode":
        return f"héllo 漢字 ✓ \t\n {key}"
    if recipe == "bigstr":
        return (f"long text for {key} " * 60)[:900]
    if recipe == "int":
        return int(r.integers(-(2**40), 2**40))
    if recipe == "float":
        return float(r.standard_normal())
    if recipe == "list":
        return [1, 2.5, "a", None, True, [3, {"x": "y"}]]
    if recipe == "none":
        return None
    if recipe == "smalldict":
        return {"a": 1, "b": [1, 2, 3], "c": {"d": "e"}, "key": key}
    if recipe == "bigdict":
        return {"values": [float(v) for v in r.standard_normal(60)], "key": key}
    if recipe == "nan":
        return {"x": float("nan"), "y": 1.0}
    if recipe == "nested":
        return {
            "emg": r.standard_normal((16, 256)).astype(np.float32),
            "meta": {"fs": 2000, "subject": key, "events": [1, 5, 9]},
            "mask": r.integers(0, 2, 100).astype(np.uint8),
        }
    if recipe == "nestedbig":
        return {
            "emg": r.standard_normal((4, 64)).astype(np.float32),
            "meta": {"notes": f"notes for {key} " * 40, "fs": 2000},
        }
    if recipe == "autolist":
        return [r.standard_normal(12).astype(np.float32), {"b": r.integers(0, 9, 5).astype(np.int16)}, "txt", 3]
    if recipe == "autotuple":
        return (r.standard_normal(6), 1, "t")
    if recipe == "pyobj":
        return {
            "set": {1, 2, 3},
            "tuple": (1, "a", 2.5),
            "bytes": bytes(range(16)),
            "complex": 1 + 2j,
            "arr": r.standard_normal(8).astype(np.float32),
            "nested": [{"k": key}, None, float("inf")],
        }
    if recipe == "autopkl":
        return {"arr": r.standard_normal((3, 40)).astype(np.float32), "obj": {1, 2, 3}, "label": key}
    if recipe == "npy":
        return r.standard_normal((8, 50)).astype(np.float32)
    if recipe == "datadict":
        return {"x": r.standard_normal(30), "label": f"dd {key}", "meta": {"a": 1, "set": {1, 2}}}
    if recipe == "datadict_arrays":
        return {"x": r.standard_normal((3, 10)).astype(np.float32), "y": r.integers(0, 5, 7).astype(np.int16)}
    if recipe == "dataframe":
        import pandas as pd

        n = 12
        return pd.DataFrame(
            {
                "a": r.integers(0, 100, n),
                "b": np.round(r.standard_normal(n), 6),
                "c": [f"s{i}" for i in range(n)],
            }
        )
    if recipe == "nifti":
        import nibabel

        data = r.integers(-500, 500, (4, 5, 6)).astype(np.int16)
        return nibabel.Nifti1Image(data, np.diag([2.0, 2.0, 2.5, 1.0]))
    if recipe in ("mneraw", "mnebv"):
        import mne

        mne.set_log_level("ERROR")
        info = mne.create_info(["c1", "c2", "c3"], 250.0, "eeg")
        data = r.standard_normal((3, 250)) * 1e-5
        return mne.io.RawArray(data, info, verbose=False)
    raise ValueError(f"unknown recipe {recipe}")


# ---------------------------------------------------------------------------
# plan: (key, cache_type, recipe) per group
# ---------------------------------------------------------------------------

ARR_KINDS = ["uint8", "int16", "float32", "bool", "complex64", "float16", "f4be",
             "0d", "float64_3d", "int64", "fortran", "noncontig", "unicode", "bytes", "i8be"]


def family_of(exca: tp.Any) -> str:
    import importlib

    try:
        importlib.import_module("exca.cachedict.dumpcontext")
        return "dumpcontext"  # 0.5.12+
    except ImportError:
        pass
    cd_cls = exca.cachedict.CacheDict
    if hasattr(cd_cls, "writer"):
        return "metadata"  # 0.2.x - 0.5.11
    return "flat"  # 0.0.x - 0.1.x


def available_types(family: str) -> set[str]:
    if family == "dumpcontext":
        from exca.cachedict.dumpcontext import DumpContext

        return set(DumpContext.HANDLERS)
    from exca.dumperloader import DumperLoader

    return set(DumperLoader.CLASSES)


def import_extras(handlers: str) -> None:
    """Import optional libs before exca registers defaults (legacy exca
    registers pandas/mne/nibabel handlers only if importable)."""
    if handlers != "all":
        return
    for mod in ("pandas", "pyarrow", "nibabel", "mne", "pybv"):
        try:
            __import__(mod)
        except Exception:
            pass


def build_plan(args: argparse.Namespace, family: str, types: set[str], group: str, n_emg: int) -> list[tuple[str, str | None, str]]:
    """(key, cache_type, recipe).  cache_type None = exca's default."""
    g = group
    plan: list[tuple[str, str | None, str]] = []
    if family == "flat":
        ct = args.legacy_cache_type
        plan += [(f"emg:{g}{i}", ct, "emg") for i in range(n_emg)]
        if args.no_catalog:
            return plan
        if ct == "Pickle":
            plan += [(f"pkl:{g}", ct, "pyobj"), (f"{WEIRD_KEY}:{g}", ct, "smalldict")]
        else:
            plan += [(f"arr:{g}:{k}", ct, f"arr:{k}") for k in ARR_KINDS]
            plan += [(f"{WEIRD_KEY}:{g}", ct, "npy")]
        return plan
    if family == "dumpcontext":
        plan += [(f"emg:{g}{i}", None, "emg") for i in range(n_emg)]
        if args.no_catalog:
            return plan
        plan += [(f"arr:{g}:{k}", None, f"arr:{k}") for k in ARR_KINDS]
        for r in ["str", "unicode", "bigstr", "int", "float", "list", "none", "smalldict", "bigdict", "nan"]:
            plan.append((f"{r}:{g}", None, r))
        for r in ["nested", "nestedbig", "autolist", "autotuple"]:
            plan.append((f"{r}:{g}", None, r))
        plan.append((f"{WEIRD_KEY}:{g}", None, "nested"))
        plan += [(f"pkl:{g}", "Pickle", "pyobj"), (f"pkl:{WEIRD_KEY}:{g}", "Pickle", "pyobj")]
        plan += [(f"npy:{g}", "NumpyArray", "npy"), (f"npy:{g}:be", "NumpyArray", "arr:i8be")]
        plan += [(f"autopkl:{g}", "AutoPickle", "autopkl"), (f"autopkl:{g}:json", "AutoPickle", "nested")]
        if "ContiguousMemmapArray" in types:
            plan.append((f"cmm:{g}", "ContiguousMemmapArray", "npy"))
            plan.append((f"cmm:{g}:i16", "ContiguousMemmapArray", "arr:int16"))
        if args.handlers == "all":
            plan += optional_handler_plan(g, types)
        return plan
    # metadata family (0.2.x - 0.5.11): one cache type per CacheDict
    from exca.dumperloader import DumperLoader
    import numpy as np

    default_arr = DumperLoader.default_class(np.ndarray).__name__
    plan += [(f"emg:{g}{i}", default_arr, "emg") for i in range(n_emg)]
    if args.no_catalog:
        return plan
    if "MemmapArrayFile" in types:
        plan += [(f"arr:{g}:{k}", "MemmapArrayFile", f"arr:{k}") for k in ARR_KINDS]
    plan += [(f"npy:{g}", "NumpyArray", "npy"), (f"npy:{g}:be", "NumpyArray", "arr:i8be")]
    if "NumpyMemmapArray" in types:
        plan.append((f"npmm:{g}", "NumpyMemmapArray", "npy"))
    if "String" in types:
        plan += [(f"str:{g}", "String", "str"), (f"unicode:{g}", "String", "unicode"),
                 (f"bigstr:{g}", "String", "bigstr"), (f"str:{WEIRD_KEY}:{g}", "String", "str")]
    if "DataDict" in types:
        plan += [(f"dd:{g}", "DataDict", "datadict"), (f"dd:{g}:arrays", "DataDict", "datadict_arrays")]
    plan += [(f"pkl:{g}", "Pickle", "pyobj"), (f"pkl:{WEIRD_KEY}:{g}", "Pickle", "pyobj"),
             (f"pkl:{g}:dict", "Pickle", "smalldict"), (f"pkl:{g}:nested", "Pickle", "nested")]
    if args.handlers == "all":
        plan += optional_handler_plan(g, types)
    return plan


# Handlers whose libraries are optional (--handlers all): the same in every layout that has them.
OPTIONAL_HANDLERS = [
    ("PandasDataFrame", "dataframe", "df"),
    ("ParquetPandasDataFrame", "dataframe", "pq"),
    ("NibabelNifti", "nifti", "nii"),
    ("MneRawFif", "mneraw", "fif"),
    ("MneRawBrainVision", "mnebv", "bv"),
]


def optional_handler_plan(g: str, types: set[str]) -> list[tuple[str, str, str]]:
    return [(f"{pre}:{g}", ct, rec) for ct, rec, pre in OPTIONAL_HANDLERS if ct in types]


def unloadable_plan(family: str, types: set[str], group: str) -> list[tuple[str, str | None, str, str]]:
    if family == "dumpcontext":
        ct = None
    elif family == "metadata" and "MemmapArrayFile" in types:
        ct = "MemmapArrayFile"
    else:
        return []
    return [
        (f"bad:{group}:object", ct, "arr:object",
         "object dtype: raw PyObject pointers were written to .data; exca cannot load it"),
        (f"bad:{group}:struct", ct, "arr:struct",
         "structured dtype string in the info line; exca's load (np.dtype(str)) fails"),
    ]


# ---------------------------------------------------------------------------
# writing with the installed exca
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def writing(cd: tp.Any, family: str) -> tp.Iterator[tp.Any]:
    if family == "flat":
        yield cd
    elif hasattr(cd, "write"):
        with cd.write():
            yield cd
    else:
        with cd.writer() as w:
            yield w


def _write_entries(folder: Path, family: str, entries: list[tuple[str, str | None, str]],
                   seed: int, shape: tuple[int, ...], barrier: tp.Any, errors: dict[str, str]) -> None:
    """Write entries grouped by cache type (one CacheDict per type)."""
    from exca.cachedict import CacheDict

    order: list[str | None] = []
    for _, ct, _ in entries:
        if ct not in order:
            order.append(ct)
    cds = {ct: CacheDict(folder, cache_type=ct) for ct in order}
    for cd in cds.values():
        list(cd.keys())  # like _call_and_store: keys = set(d) before computing
    if barrier is not None:
        barrier.wait()

    def run(ct: str | None) -> None:
        cd = cds[ct]
        with writing(cd, family) as w:
            for key, ect, recipe in entries:
                if ect != ct:
                    continue
                try:
                    w[key] = make_value(recipe, key, seed, shape)
                except Exception as e:  # record, keep writing
                    errors[key] = f"{type(e).__name__}: {e}"

    if family == "metadata":
        # one info file per thread and one cache_type per info file (header):
        # give each cache type its own thread (kept alive => distinct TIDs)
        threads = [threading.Thread(target=run, args=(ct,)) for ct in order]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for ct in order:
            run(ct)


def _writer_proc(folder: str, family: str, entries: list, seed: int, shape: tuple, barrier: tp.Any, queue: tp.Any, role: str) -> None:
    errors: dict[str, str] = {}
    try:
        _write_entries(Path(folder), family, entries, seed, shape, barrier, errors)
    except Exception:
        errors["__process__"] = traceback.format_exc()
    queue.put((role, os.getpid(), errors))


def _delete_proc(folder: str, family: str, keys: list[str], queue: tp.Any) -> None:
    from exca.cachedict import CacheDict

    errors: dict[str, str] = {}
    cd = CacheDict(Path(folder))
    try:
        ctx = cd.write() if hasattr(cd, "write") else contextlib.nullcontext()
        with ctx:
            for k in keys:
                try:
                    del cd[k]
                except Exception as e:
                    errors[k] = f"{type(e).__name__}: {e}"
    except Exception:
        errors["__process__"] = traceback.format_exc()
    queue.put(("delete", os.getpid(), errors))


def _scan_info_files(folder: Path) -> dict[str, tp.Any]:
    """Count live entries per key across root info files (bytes parsing)."""
    copies: dict[str, int] = {}
    files = sorted(p for p in folder.iterdir() if p.name.endswith("-info.jsonl"))
    for p in files:
        for line in p.read_bytes().split(b"\n"):
            if not line.strip() or line[:1] == b" " or line.startswith(b"metadata="):
                continue
            try:
                k = json.loads(line)["#key"]
            except Exception:
                continue
            copies[k] = copies.get(k, 0) + 1
    return {
        "info_files": [p.name for p in files],
        "live_entries": sum(copies.values()),
        "keys_with_duplicates": sorted(k for k, c in copies.items() if c > 1),
        "max_copies": max(copies.values(), default=0),
    }


def _layout(folder: Path) -> dict[str, tp.Any]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def _probe_0d_loads() -> bool:
    """Does this exca's MemmapArrayFile load a 0-d array? (0.4.8/0.5.11 don't)"""
    import numpy as np
    from exca.cachedict import CacheDict

    with tempfile.TemporaryDirectory() as tmp:
        cd = CacheDict(Path(tmp), cache_type="MemmapArrayFile")
        with writing(cd, "metadata") as w:
            w["x"] = np.array(1.5)
        try:
            return float(CacheDict(Path(tmp))["x"]) == 1.5
        except Exception:
            return False


def run_inner(args: argparse.Namespace) -> int:
    import multiprocessing as mp

    import_extras(args.handlers)
    import exca
    import exca.cachedict  # noqa: F401
    from importlib.metadata import version

    got = version("exca")
    if got != args.exca_version:
        print(f"exca {got} installed, expected {args.exca_version}", file=sys.stderr)
        return 2
    family = family_of(exca)
    types = available_types(family)
    shape = tuple(int(x) for x in args.array_shape.split(","))
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        print(f"{out} exists and is not empty", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)

    shared = build_plan(args, family, types, "shared", args.keys)
    solo = build_plan(args, family, types, "solo", args.solo_keys)
    expected_unloadable: dict[str, str] = {}
    if args.unloadable:
        for key, ct, rec, why in unloadable_plan(family, types, "solo"):
            solo.append((key, ct, rec))
            expected_unloadable[key] = why
    if family == "flat":
        # one cache type per folder: .cache_type must exist before writers race
        from exca.cachedict import CacheDict

        CacheDict(out, cache_type=args.legacy_cache_type)

    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(args.writers + 1)
    queue = ctx.Queue()
    t0 = time.time()
    procs = [ctx.Process(target=_writer_proc, args=(str(out), family, shared, args.seed, shape, barrier, queue, "shared"))
             for _ in range(args.writers)]
    procs.append(ctx.Process(target=_writer_proc, args=(str(out), family, solo, args.seed, shape, barrier, queue, "solo")))
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    write_seconds = time.time() - t0

    written: dict[str, dict[str, tp.Any]] = {}
    # key -> "error (failed in i of n writers)"; a key counts as written when
    # at least one of its writers succeeded (exca 0.5.12-0.5.2x raise
    # "... already exists" for concurrent per-key files: only one writer wins)
    write_errors: dict[str, str] = {}
    n_fail: dict[str, int] = {}
    for role, pid, errors in results:
        for k, v in errors.items():
            if k == "__process__":
                write_errors[f"{k} (pid {pid})"] = v
                continue
            n_fail[k] = n_fail.get(k, 0) + 1
            write_errors[k] = v
    for group, plan, n in (("shared", shared, args.writers), ("solo", solo, 1)):
        for key, ct, rec in plan:
            if key in write_errors:
                write_errors[key] += f" (failed in {n_fail[key]} of {n} writers)"
            if n_fail.get(key, 0) < n:
                written[key] = {"group": group, "cache_type": ct or "(default)", "recipe": rec}
                if n_fail.get(key):
                    written[key]["writers_succeeded"] = n - n_fail[key]
    for k in list(expected_unloadable):
        if k not in written:
            expected_unloadable.pop(k)  # never written, so nothing to load

    deleted: list[str] = []
    before_delete = _scan_info_files(out)
    if args.deletions:
        tiny_key = "str:tiny"
        tiny_ct = None if family == "dumpcontext" else ("String" if "String" in types else
                                                         (args.legacy_cache_type if family == "flat" else "Pickle"))
        tiny_rec = "str" if family != "flat" or tiny_ct in ("Pickle", "String") else "npy"
        p = ctx.Process(target=_writer_proc, args=(str(out), family, [(tiny_key, tiny_ct, tiny_rec)],
                                                    args.seed, shape, None, queue, "tiny"))
        p.start()
        _, _, errs = queue.get()
        p.join()
        if tiny_key not in errs:
            written[tiny_key] = {"group": "tiny", "cache_type": tiny_ct or "(default)", "recipe": tiny_rec}
        write_errors.update(errs)
        cands = ["emg:shared1", "emg:solo1", "pkl:shared", "nested:shared", "arr:shared:int16", tiny_key]
        if family == "flat":
            cands = ["emg:shared1", "emg:solo1", "arr:shared:int16", "pkl:shared", tiny_key]
        if args.sweep:
            cands.insert(0, shared[0][0])
        to_delete = [k for k in cands if k in written]
        p = ctx.Process(target=_delete_proc, args=(str(out), family, to_delete, queue))
        p.start()
        _, _, errs = queue.get()
        p.join()
        deleted = [k for k in to_delete if k not in errs]
        write_errors.update({f"del {k}": v for k, v in errs.items()})

    # what exca itself sees afterwards (on a copy: reading mutates the folder)
    with tempfile.TemporaryDirectory(prefix="exca-fx-keys-") as tmp:
        cp = Path(tmp) / "c"
        common.copy_cache(out, cp)
        from exca.cachedict import CacheDict

        try:
            visible = sorted(CacheDict(cp).keys())
        except Exception as e:
            visible = [f"ERROR {type(e).__name__}: {e}"]
    resurrected = sorted(set(deleted) & set(visible))
    single_file = {"Pickle", "NumpyArray", "NumpyMemmapArray", "PandasDataFrame", "ParquetPandasDataFrame",
                   "NibabelNifti", "MneRawFif", "TorchTensor"}
    for k in resurrected:
        if written[k]["cache_type"] in single_file:
            expected_unloadable[k] = ("legacy del blanked only the winning line and unlinked the per-key file; "
                                      "a duplicate line survives and points to the missing file")
    if family == "metadata" and "MemmapArrayFile" in types and not _probe_0d_loads():
        for k, info in written.items():
            if info["recipe"] == "arr:0d" and info["cache_type"] == "MemmapArrayFile" and k in visible:
                expected_unloadable[k] = ("0-d array: this MemmapArrayFile loader slices with np.prod(()) "
                                          "= 1.0 (a float) and raises TypeError")

    maybe_unloadable: dict[str, str] = {}
    if args.sweep and args.deletions:
        for k, info in written.items():
            if info["cache_type"] == "AutoPickle" and info["group"] == "shared" and k not in deleted:
                maybe_unloadable[k] = ("AutoPickle pickle embeds a .data ref of whichever writer renamed it last; "
                                       "the sweep removed N-1 writers' files (nondeterministic)")
    meta = {
        "sweep": bool(args.sweep),
        "maybe_unloadable": maybe_unloadable,
        "exca_version": got,
        "family": family,
        "python": sys.version.split()[0],
        "numpy": __import__("numpy").__version__,
        "host": socket.gethostname(),
        "writers": args.writers,
        "keys": args.keys,
        "solo_keys": args.solo_keys,
        "array_shape": list(shape),
        "seed": args.seed,
        "handlers": args.handlers,
        "handler_types_available": sorted(types),
        "cache_folder": str(out.resolve()),
        "write_seconds": round(write_seconds, 3),
        "keys_written": written,
        "keys_deleted": deleted,
        "deleted_keys_still_visible_to_exca": resurrected,
        "keys_visible_to_exca": visible,
        "expected_unloadable": expected_unloadable,
        "write_errors": write_errors,
        "info_scan_before_deletions": before_delete,
        "info_scan_final": _scan_info_files(out),
        "layout": _layout(out),
        "command": " ".join(["generate.py"] + [a for a in sys.argv[1:] if a != "--inner"]),
    }
    if family == "metadata":
        meta["notes"] = ("<=0.5.11: del blanks only the winning copy, so a deleted key with "
                         "duplicates stays visible (resurrection); see deleted_keys_still_visible_to_exca")
    fx = out.parent / f"{out.name}.fixture.json"
    fx.write_text(json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({meta['layout']['files']} files, {meta['layout']['bytes']} bytes) "
          f"in {write_seconds:.2f}s; {len(written)} keys, {len(deleted)} deleted, "
          f"{len(write_errors)} write errors; metadata: {fx}")
    return 0


def main() -> int:
    args = parse_args()
    if args.inner:
        return run_inner(args)
    py = common.ensure_venv(args.exca_version, args.handlers)
    os.execv(py, [py, str(Path(__file__).resolve()), "--inner", *sys.argv[1:]])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
