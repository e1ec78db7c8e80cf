#!/usr/bin/env python3
"""Rebuild the pack conformance vectors in ``packs/`` (docs/FORMAT.md 3.7-3.8, both implementations).

    CASKET_HELPER=.build/debug/casket-testhelper CASKET_BIN=.build/debug/casket \\
        .venv/bin/python Tools/python/conformance/make_pack_vectors.py

Each vector is a folder ``packs/<name>/`` holding one pack ``<id>.pack``, the index every sealer must
write for it (``expected.idx``: byte-identical in both languages), and ``expected.json``: the records a
scan finds (``sound`` false for a record whose bytes do not hash to its digest) and the covered length.

- ``swift-lz4``: written and sealed by the Swift ``PackWriter`` (helper ``pack-write``) in an lz4 store:
  raw records, LZ4 blocks, the empty payload, 63/64-byte sizes around the form rule's minimum, a
  duplicate append that must not be written twice.
- ``python-lz4``, ``python-raw``: the same kinds written and sealed by the Python ``PackWriter``.
- ``torn-tail``: a pack whose writer was killed while appending: the header and half the bytes of a last
  record. ``torn-header``: part of a header. ``zero-tail``: zeros after the last record (a power loss
  that extended the file). None is sealed by its writer: the index leaves the tail out.
- ``damaged-record``: one byte of a record's payload flipped: the seal verifies and leaves it out, and
  indexes the records after it.
"""

from __future__ import annotations

import json
import typing as tp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import xxhash  # noqa: E402

from casket import packs  # noqa: E402

OUT = HERE / "packs"
SIZES = [0, 1, 63, 64, 100, 5000, 20000, 9000]


def payload(i: int, size: int) -> bytes:
    if i % 2:  # compressible: 16 bytes repeated
        return (xxhash.xxh3_128_digest(f"v{i}".encode()) * (size // 16 + 1))[:size]
    return b"".join(xxhash.xxh3_128_digest(f"v{i}-{j}".encode()) for j in range(size // 16 + 1))[:size]


def python_pack(folder: str, compress: bool) -> str:
    writer = packs.PackWriter(folder, "vector-python-0000", compress=compress, durable=False)
    ident = ""
    for i, size in enumerate(SIZES):
        data = payload(i, size)
        ident, _ = writer.append(data, xxhash.xxh3_128_hexdigest(data))
        if i == 1:
            writer.append(data, xxhash.xxh3_128_hexdigest(data))
    writer.seal()
    return ident


def swift_pack(folder: str) -> str:
    helper, cli = os.environ["CASKET_HELPER"], os.environ["CASKET_BIN"]
    root = os.path.join(folder, "store")
    subprocess.run([cli, "init", root, "--compression", "lz4", "--durability", "none"], check=True,
                   capture_output=True)
    out = subprocess.run([helper, "pack-write", root] + [str(s) for s in SIZES], check=True, capture_output=True,
                         text=True)
    ident = out.stdout.strip()
    for suffix in (".pack", ".idx"):
        shutil.copy(os.path.join(root, "packs", ident + suffix), os.path.join(folder, ident + suffix))
    return ident


def describe(pack_path: Path) -> dict:
    fd = os.open(pack_path, os.O_RDONLY)
    try:
        found, covered = packs.scan_records(fd, os.fstat(fd).st_size, verify=True)
    finally:
        os.close(fd)
    records = [dict(r._asdict(), sound=flaw is None) for r, flaw in found]
    index = packs.encode_index([r for r, flaw in found if flaw is None], covered)
    return {"pack": pack_path.name[: -len(".pack")], "records": records, "covered": covered}, index


def write_vector(name: str, pack_path: Path, writer_index: tp.Optional[Path] = None) -> None:
    target = OUT / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copy(pack_path, target / pack_path.name)
    expected, index = describe(target / pack_path.name)
    if writer_index is not None and writer_index.read_bytes() != index:
        sys.exit(f"{name}: the writer's own index differs from the one a seal writes")
    (target / "expected.idx").write_bytes(index)
    (target / "expected.json").write_text(json.dumps(dict(expected, vector=name), indent=1) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        made = {}
        for name, compress in (("python-lz4", True), ("python-raw", False)):
            folder = os.path.join(tmp, name)
            os.makedirs(folder)
            made[name] = Path(folder, python_pack(folder, compress) + ".pack")
        folder = os.path.join(tmp, "swift-lz4")
        os.makedirs(folder)
        made["swift-lz4"] = Path(folder, swift_pack(folder) + ".pack")
        for name, path in made.items():
            write_vector(name, path, path.with_suffix(".idx"))
        base = made["python-lz4"].read_bytes()
        extra = payload(99, 4000)
        record, stored = packs.encode_record(extra, xxhash.xxh3_128_hexdigest(extra), False, len(base))
        header = packs.encode_header(record)
        broken = {
            "torn-tail": base + header + stored[: len(stored) // 2],
            "torn-header": base + header[:20],
            "zero-tail": base + bytes(100),
        }
        raw = bytearray(made["python-raw"].read_bytes())
        raw[packs.HEADER_SIZE * 5 + 1 + 63 + 64 + 10] ^= 0x40  # inside the 64-byte record's payload
        broken["damaged-record"] = bytes(raw)
        for name, data in broken.items():
            path = Path(tmp, f"vector-{name}-0000-1.pack")
            path.write_bytes(data)
            write_vector(name, path)
    print(f"wrote {len(made) + len(broken)} pack vectors to {OUT}")


if __name__ == "__main__":
    main()
