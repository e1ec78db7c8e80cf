#!/usr/bin/env python3
"""8 processes run one exca MapInfra method over the same items: exca 0.6.0 against Casket (the switch on).

Each round runs four configurations in turn (the order rotates from round to round, so a drift of the machine's
speed does not favour one): exca with its in-flight registry, exca with it disabled (what an NFS mount that breaks
SQLite's locks leaves of it: every worker computes everything), and Casket with the registry on and disabled (the
switch replaces it by Casket's claims, so both should match). Per run: the wall time from the barrier that releases
the 8 workers to the last one holding all its values, the number of computations (every one is logged to a file) and
how many the busiest worker did, and the bytes on disk of the cache folder (``du -sb`` and ``du -sk``). Each worker
then checks every value it got back.

    Tools/python/bench/bench_mapinfra.py [--rounds 5] [--workers 8] [--items 50] [--mib 1] [--compute 0.1]

``--python`` runs an existing venv's python that has exca and this client; by default a venv is layered on
``Tools/exca-fixtures/venv.sh 0.6.0`` (as tests/test_exca_switch.py does). Prints one JSON line per run, then
medians and ratios against exca with its registry.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parent

# One worker: imports, builds the model, says it is ready, waits at the barrier, runs, checks, reports.
WORKER = """
import json, os, sys, time, typing as tp
from pathlib import Path
import numpy as np, pydantic, exca, exca.map
folder, log, ready, go, items, floats, compute = sys.argv[1:8]
if os.environ.get("NO_REGISTRY") == "1":
    exca.map.MapInfra._inflight_registry = lambda self: None
class Model(pydantic.BaseModel):
    infra: exca.MapInfra = exca.MapInfra()
    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[np.ndarray]:
        for item in items:
            with open(log, "a") as f:
                f.write(f"{item} {os.getpid()}\\n")
            time.sleep(float(compute))  # reading a recording, filtering it...
            yield np.random.default_rng(item).standard_normal(int(floats), dtype=np.float32)
model = Model(infra={"folder": folder})
Path(ready, str(os.getpid())).touch()
while not Path(go).exists():
    time.sleep(0.002)
out = list(model.process(list(range(int(items)))))
end = time.time()
ok = len(out) == int(items) and all(np.array_equal(o, np.random.default_rng(i).standard_normal(int(floats), dtype=np.float32))
         for i, o in enumerate(out))
print(json.dumps({"ok": ok, "end": end}))
"""

CONFIGS = {  # name: (switch on, exca's registry disabled)
    "exca": (False, False),
    "exca-no-registry": (False, True),
    "casket": (True, False),
    "casket-no-registry": (True, True),
}


def layered_python(root: Path) -> Path:
    """A venv whose site-packages holds this client (pip install -e) and sees exca 0.6.0's beside it: the
    one the tests use (tests/test_exca_switch.py)."""
    import sys

    sys.path.insert(0, str(CLIENT / "tests"))
    from test_exca_switch import _layered_venv

    return _layered_venv("0.6.0", root)


def du(folder: Path, flag: str) -> int:
    return int(subprocess.run(["du", flag, str(folder)], capture_output=True, text=True, check=True).stdout.split()[0])


def run_once(python: Path, work: Path, name: str, args: argparse.Namespace) -> dict:
    switch, no_registry = CONFIGS[name]
    run = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=work))
    cache, ready, log, go = run / "cache", run / "ready", run / "log", run / "go"
    cache.mkdir()
    ready.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASKET_EXCA") and k != "PYTHONPATH"}
    if switch:
        env["CASKET_EXCA"] = "1"
    if no_registry:
        env["NO_REGISTRY"] = "1"
    floats = args.mib * (1 << 20) // 4
    argv = [str(python), "-c", WORKER, str(cache), str(log), str(ready), str(go), str(args.items), str(floats),
            str(args.compute)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(args.workers)]
    while len(list(ready.iterdir())) < args.workers:
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"{name}: a worker exited early: {[p.communicate() for p in procs]}")
        time.sleep(0.01)
    start = time.time()
    go.touch()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise SystemExit(f"{name}: a worker failed ({p.returncode}):\n{err}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    lines = log.read_text().splitlines()
    result = {
        "config": name,
        "wall_s": round(max(r["end"] for r in reports) - start, 3),
        "computations": len(lines),
        "busiest_worker": max(collections.Counter(line.split()[1] for line in lines).values()),
        "du_bytes": du(cache, "-sb"),
        "du_kib": du(cache, "-sk"),
        "all_values_right": all(r["ok"] for r in reports),
    }
    shutil.rmtree(run)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--mib", type=int, default=1, help="size of each item's array")
    parser.add_argument("--compute", type=float, default=0.1, help="seconds each computation sleeps")
    parser.add_argument("--python", type=Path, help="a python with exca and this client (default: make one)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, among " + ", ".join(CONFIGS))
    args = parser.parse_args()
    names = args.configs.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-mapinfra.", dir="/var/tmp"))
    try:
        python = args.python or layered_python(work)
        results: dict[str, list[dict]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                result = run_once(python, work, name, args)
                print(json.dumps({"round": round_, **result}), flush=True)
                results[name].append(result)
        base = results[names[0]]
        print(f"\nmedians over {args.rounds} rounds; {args.workers} workers, {args.items} items of {args.mib} MiB, "
              f"{args.compute} s each; ratios against {names[0]}")
        print(f"{'config':20} {'wall s [min, max]':>22} {'x [min, max]':>18} {'computations':>13} {'x':>6} "
              f"{'du MiB':>8} {'x':>6} {'busiest [min, max]':>19}  values")
        for name in names:
            rs = results[name]
            walls, busy = [r["wall_s"] for r in rs], [r["busiest_worker"] for r in rs]
            comp = statistics.median(r["computations"] for r in rs)
            disk = statistics.median(r["du_bytes"] for r in rs)
            pairs = {k: [r[k] / b[k] for r, b in zip(rs, base)] for k in ("wall_s", "computations", "du_bytes")}
            ratio = {k: statistics.median(v) for k, v in pairs.items()}
            print(f"{name:20} {statistics.median(walls):8.2f} [{min(walls):5.2f}, {max(walls):5.2f}] "
                  f"{ratio['wall_s']:6.2f} [{min(pairs['wall_s']):4.2f}, {max(pairs['wall_s']):4.2f}] {comp:13.0f} "
                  f"{ratio['computations']:6.2f} {disk / (1 << 20):8.1f} {ratio['du_bytes']:6.2f} "
                  f"{statistics.median(busy):6.0f} [{min(busy):3d}, {max(busy):3d}]  "
                  f"{'right' if all(r['all_values_right'] for r in rs) else 'WRONG'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
