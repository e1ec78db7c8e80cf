#!/usr/bin/env python3
"""Rebuild ``chunks.json``: the sidecar (docs/FORMAT.md 3.6) of payloads around the chunk boundaries.

    CASKET_BIN=.build/debug/casket .venv/bin/python Tools/python/conformance/make_chunk_vectors.py

Payload ``size`` is byte ``i = (i * 131 + 7) mod 251`` for ``i < size`` (generated, not stored). Each entry
records the payload's hash and the sidecar's bytes as hex, written by the Python client; the script stores
each payload with the Swift CLI too (``blob put`` into a store with ``chunks_min`` 1) and refuses to write
the file unless both sidecars are byte-identical. Both test suites check every entry
(``Tools/python/tests/test_chunks.py``, ``Tests/CasketTests/ChunkDigestsTests.swift``). The empty payload
never has a sidecar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

import casket  # noqa: E402
from casket.chunks import CHUNK_SIZE, ChunkDigester, sidecar_bytes  # noqa: E402

SIZES = [1, 4095, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 5 * CHUNK_SIZE + 3, 4 << 20]


def payload(size: int) -> bytes:
    return ((np.arange(size, dtype=np.int64) * 131 + 7) % 251).astype(np.uint8).tobytes()


def main() -> int:
    bin_ = os.environ.get("CASKET_BIN", str(HERE.parents[2] / ".build" / "debug" / "casket"))
    out = []
    with tempfile.TemporaryDirectory() as work:
        store = Path(work) / "s"
        subprocess.run([bin_, "init", str(store), "--chunks-min", "1", "--durability", "none"], check=True,
                       capture_output=True)
        for size in SIZES:
            data = payload(size)
            d = ChunkDigester()
            d.update(data)
            h = casket.hash_bytes(data)
            side = sidecar_bytes(h, size, d.finish())
            f = Path(work) / "p"
            f.write_bytes(data)
            subprocess.run([bin_, "blob", "put", "--store", str(store), str(f)], check=True, capture_output=True)
            swift = (store / "blobs" / h[:2] / (h + ".chunks")).read_bytes()
            if swift != side:
                raise SystemExit(f"size {size}: the Swift and Python sidecars differ")
            out.append({"size": size, "hash": h, "sidecar": side.hex()})
    doc = {
        "about": "sidecars of generated payloads (byte i = (i * 131 + 7) mod 251), written by Python and by "
                 "Swift identically; docs/FORMAT.md 3.6; rebuilt by make_chunk_vectors.py",
        "chunk_size": CHUNK_SIZE,
        "payloads": out,
    }
    (HERE / "chunks.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"chunks.json: {len(out)} payloads, Swift and Python identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
