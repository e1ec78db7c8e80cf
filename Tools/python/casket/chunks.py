"""Chunk digests of large blobs (docs/FORMAT.md 3.6): the ``<hash>.chunks`` sidecar beside a blob.

A sidecar holds one XXH3-64 digest per fixed-size chunk of the payload, so that a read of a window
verifies only the chunks it touches. Its bytes are a pure function of the payload: every writer, Swift or
Python, produces the same file. The blob's identity stays the XXH3-128 of the whole payload.
"""

from __future__ import annotations

import typing as tp

import numpy as np
import xxhash

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_CHUNKS_MIN",
    "SIDECAR_SUFFIX",
    "ChunkDigester",
    "ChunkTable",
    "SidecarFlaw",
    "chunk_count",
    "parse_sidecar",
    "sidecar_bytes",
    "sidecar_length",
    "wants_sidecar",
]

CHUNK_SIZE = 64 << 10  # what writers use (docs/PERFORMANCE.md 9: a cold window reads little more than itself)
DEFAULT_CHUNKS_MIN = 4 << 20  # casket.json "chunks_min" when absent
SIDECAR_SUFFIX = ".chunks"
MAGIC = b"CASKCHK1"
ALGORITHM_XXH3_64 = 1
HEADER = 40  # magic 8, blob hash 16, payload size 8, chunk size 4, algorithm 1, zero 3
MIN_CHUNK, MAX_CHUNK = 4 << 10, 64 << 20  # chunk sizes a reader accepts (powers of two)


class SidecarFlaw(Exception):
    """A sidecar that cannot be the chunk digests of its blob; the message says why."""


def chunk_count(size: int, chunk: tp.Optional[int] = None) -> int:
    return -(-size // (chunk or CHUNK_SIZE))


def sidecar_length(size: int, chunk: tp.Optional[int] = None) -> int:
    return HEADER + 8 * chunk_count(size, chunk) + 8


def wants_sidecar(size: int, chunks_min: int) -> bool:
    """Whether a writer gives a payload of ``size`` bytes a sidecar: non-empty and at least ``chunks_min``."""
    return size > 0 and size >= chunks_min


class ChunkDigester:
    """XXH3-64 of each ``CHUNK_SIZE`` piece of a payload fed in pieces of any size, in the pass that
    computes its XXH3-128 (the caller feeds both)."""

    __slots__ = ("digests", "chunk", "_state", "_filled")

    def __init__(self) -> None:
        self.chunk = CHUNK_SIZE
        self.digests: list[int] = []
        self._state = xxhash.xxh3_64()
        self._filled = 0

    def update(self, data: tp.Any) -> None:
        view = memoryview(data).cast("B")
        pos, n, chunk = 0, len(view), self.chunk
        while pos < n:
            take = min(chunk - self._filled, n - pos)
            if take == chunk:
                self.digests.append(xxhash.xxh3_64_intdigest(view[pos : pos + take]))
            else:
                self._state.update(view[pos : pos + take])
                self._filled += take
                if self._filled == chunk:
                    self.digests.append(self._state.intdigest())
                    self._state.reset()
                    self._filled = 0
            pos += take

    def finish(self) -> list[int]:
        if self._filled:
            self.digests.append(self._state.intdigest())
            self._state.reset()
            self._filled = 0
        return self.digests


def sidecar_bytes(h: str, size: int, digests: tp.Sequence[int], chunk: tp.Optional[int] = None) -> bytes:
    """The sidecar of blob ``h`` (FORMAT 3.6): header, one big-endian digest per chunk, checksum."""
    chunk = chunk or CHUNK_SIZE
    if len(digests) != chunk_count(size, chunk):
        raise ValueError(f"{len(digests)} digests for {size} bytes in chunks of {chunk}")
    body = bytearray(MAGIC)
    body += bytes.fromhex(h)
    body += size.to_bytes(8, "little") + chunk.to_bytes(4, "little") + bytes([ALGORITHM_XXH3_64, 0, 0, 0])
    for d in digests:
        body += d.to_bytes(8, "big")
    body += xxhash.xxh3_64_intdigest(bytes(body)).to_bytes(8, "big")
    return bytes(body)


class ChunkTable(tp.NamedTuple):
    """A sidecar read and checked against its blob: ``digests`` as unsigned 64-bit integers, ``raw`` the
    file's bytes."""

    chunk: int
    digests: np.ndarray
    raw: bytes


def parse_sidecar(data: bytes, h: str, size: int) -> ChunkTable:
    """Check a sidecar against blob ``h`` of ``size`` payload bytes; raise :class:`SidecarFlaw` saying why
    it cannot be used (the reader then verifies the blob whole)."""
    if len(data) < HEADER + 8 or data[:8] != MAGIC:
        raise SidecarFlaw("it does not start with the sidecar magic CASKCHK1" if data[:8] != MAGIC else "it is truncated")
    if data[8:24] != bytes.fromhex(h):
        raise SidecarFlaw(f"it belongs to blob {data[8:24].hex()}, not {h}")
    declared = int.from_bytes(data[24:32], "little")
    chunk = int.from_bytes(data[32:36], "little")
    if declared != size:
        raise SidecarFlaw(f"it describes {declared} payload bytes, the blob holds {size}")
    if chunk & (chunk - 1) or not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise SidecarFlaw(f"its chunk size {chunk} is not a power of two from {MIN_CHUNK} to {MAX_CHUNK}")
    if data[36] != ALGORITHM_XXH3_64 or data[37:40] != b"\0\0\0":
        raise SidecarFlaw(f"its algorithm {data[36]} is unknown (1 = XXH3-64)")
    want = sidecar_length(size, chunk)
    if len(data) != want:
        raise SidecarFlaw(f"it holds {len(data)} bytes, {want} expected")
    if xxhash.xxh3_64_intdigest(data[:-8]) != int.from_bytes(data[-8:], "big"):
        raise SidecarFlaw("its checksum does not match (damaged)")
    digests = np.frombuffer(data, dtype=">u8", count=chunk_count(size, chunk), offset=HEADER).astype(np.uint64)
    return ChunkTable(chunk, digests, bytes(data))
