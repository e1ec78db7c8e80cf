"""Pack files: small payloads appended to per-writer packs, and the sealed, sorted pack index
(docs/FORMAT.md 3.7-3.8). The same format as Swift's ``PackRecord``, ``PackIndex``, ``PackWriter`` and
``PackShelf``; the conformance vectors in ``conformance/packs`` hold packs written by each side.

A record describes itself (magic, hash, form, lengths, a header check), so a pack whose writer was killed
can be read and sealed by anyone. A sealed pack's index is searched through a read-only mapping: nothing
of it is loaded for a writer's dedup probe. A reader keeps a table of the raw records of each pack it has
read a payload from (the read fast path, ``PackShelf.read_raw``), as large as the index lines naming them.
"""

from __future__ import annotations

import errno
import itertools
import mmap
import os
import secrets
import stat
import struct
import sys
import threading
import time
import typing as tp
import weakref
from pathlib import Path

import lz4.block
import numpy as np
import xxhash

from .lease import Lease
from .store import (PROBE_INTERVAL, RACY_WINDOW_NS, _PID, BlobCorruptError, StoreError, _as_byte_view, _spawn,
                    sanitized_host)

RECORD_MAGIC = b"CPK1"
HEADER_SIZE = 41  # magic 4, hash 16, form 1, size 8, stored 8, header check 4
MAXIMUM_SIZE = 1 << 24  # the largest payload a record may hold
INDEX_MAGIC = b"CPI1"
INDEX_HEADER = 16 + 256 * 4  # magic 4, count 4, covered 8, fan-out 256 x 4
ENTRY_SIZE = 41  # hash 16, offset 8, stored 8, size 8, form 1
TRAILER_SIZE = 8
RAW, LZ4 = 0, 1
PACK_SUFFIX, INDEX_SUFFIX, LEASE_SUFFIX, RETIRED_SUFFIX = ".pack", ".idx", ".lease", ".retired"
LEASE_TTL = 60.0  # a writer's lease; its heartbeat runs every quarter of it
SCAN_WINDOW = 1 << 20
APPEND_BUFFER = 1 << 20  # a writer's records are written to its pack in runs of up to this many bytes
OWN_SEALED_MAX = 16  # sealed packs whose records a writer keeps for its own dedup probe (PackWriter.sealed)
PROBE_MERGE = 8  # sealed packs a probe searches one by one; past them, one table of their hashes (_ProbeTable)
RELIST_ATTEMPTS = 5  # listings one refresh takes at most while packs vanish or the folder changes under it
_ID_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_HEAD = struct.Struct("<4s16sBQQ")  # the 37 bytes the header check covers
_ENTRY = struct.Struct("<16sQQQB")
_CHECK = struct.Struct("<I")
# an index entry for numpy: the hash as two big-endian halves (their order is the hash's), then as _ENTRY
_ENTRY_TABLE = np.dtype([("hi", ">u8"), ("lo", ">u8"), ("offset", "<u8"), ("stored", "<u8"), ("size", "<u8"),
                         ("form", "u1")])


class PackRecord(tp.NamedTuple):
    digest: str  # 32 lowercase hex digits
    form: int
    size: int
    stored: int
    offset: int

    @property
    def end(self) -> int:
        return self.offset + HEADER_SIZE + self.stored


def compress_bound(size: int) -> int:
    """``LZ4_COMPRESSBOUND``: the most an LZ4 block of ``size`` bytes can take."""
    return size + size // 255 + 16


def encode_header(record: PackRecord) -> bytes:
    head = _HEAD.pack(RECORD_MAGIC, bytes.fromhex(record.digest), record.form, record.size, record.stored)
    return head + struct.pack("<I", xxhash.xxh32_intdigest(head))


def parse_header(buf: tp.Any, offset: int, at: int = 0) -> tp.Optional[PackRecord]:
    """The record whose header is at ``buf[at:]``, or None when those bytes are not one (wrong magic,
    failed check, a form or lengths no writer produces): a torn or zeroed tail is never a record."""
    if len(buf) - at < HEADER_SIZE:
        return None
    head = memoryview(buf)[at:at + 37]  # no copy
    magic, digest, form, size, stored = _HEAD.unpack_from(head)
    if magic != RECORD_MAGIC or _CHECK.unpack_from(buf, at + 37)[0] != xxhash.xxh32_intdigest(head):
        return None
    if size > MAXIMUM_SIZE:
        return None
    if form == RAW:
        if stored != size:
            return None
    elif form == LZ4:
        if size == 0 or stored == 0 or stored > compress_bound(size):
            return None
    else:
        return None
    return PackRecord(digest.hex(), form, size, stored, offset)


def encode_record(payload: tp.Any, digest: str, compress: bool, offset: int) -> tuple[PackRecord, bytes]:
    """The record of ``payload`` in the form the store's rule gives (FORMAT 3.2: LZ4 only when
    ``compress`` and the block is at most 90 % of the payload), and the bytes to store."""
    kind = type(payload)
    flat = kind is bytes or kind is bytearray or (kind is memoryview and payload.ndim == 1 and payload.format == "B")
    data = payload if flat else _as_byte_view(payload)  # no copy
    size = len(data)
    if compress and size >= 64:
        block = lz4.block.compress(data, store_size=False)
        if 10 * len(block) <= 9 * size:
            return PackRecord(digest, LZ4, size, len(block), offset), block
    return PackRecord(digest, RAW, size, size, offset), data


def decode_payload(record: PackRecord, stored: tp.Any) -> tp.Union[bytes, str]:
    """The payload, or a phrase saying what is wrong with the stored bytes."""
    if len(stored) != record.stored:
        return "the pack ends inside the record"
    if record.form == LZ4:
        try:
            data = lz4.block.decompress(bytes(stored), uncompressed_size=record.size)
        except lz4.block.LZ4BlockError:
            return "its LZ4 block does not decode to the size its header gives"
        if len(data) != record.size:
            return "its LZ4 block does not decode to the size its header gives"
    else:
        data = stored if type(stored) is bytes else bytes(stored)
    actual = xxhash.xxh3_128_hexdigest(data)
    return data if actual == record.digest else f"its bytes hash to {actual}"


def scan_records(fd: int, length: int, start: int = 0, verify: bool = False
                 ) -> tuple[list[tuple[PackRecord, tp.Optional[str]]], int]:
    """Every complete record with a valid header from ``start``, in file order, with what is wrong with
    its bytes when ``verify`` (None: sound), and where the scan stopped (the end of the last one)."""
    found: list[tuple[PackRecord, tp.Optional[str]]] = []
    buf, buf_start = b"", 0

    def ensure(lo: int, hi: int) -> None:
        nonlocal buf, buf_start
        if lo >= buf_start and hi <= buf_start + len(buf):
            return
        buf, buf_start = os.pread(fd, min(length, max(hi, lo + SCAN_WINDOW)) - lo, lo), lo

    pos = start
    while pos + HEADER_SIZE <= length:
        ensure(pos, pos + HEADER_SIZE)
        record = parse_header(buf, pos, pos - buf_start)
        if record is None or record.end > length:
            break
        flaw = None
        if verify:
            ensure(pos, record.end)
            lo = pos - buf_start + HEADER_SIZE
            result = decode_payload(record, buf[lo:lo + record.stored])
            flaw = result if isinstance(result, str) else None
        found.append((record, flaw))
        pos = record.end
    return found, pos


def read_payload(fd: int, path: str, record: PackRecord) -> bytes:
    """The verified payload of ``record``: its header is read again and must be the one expected, and its
    bytes must hash to its digest. Raises ``BlobCorruptError`` naming the pack and the offset."""
    def corrupt(what: str) -> BlobCorruptError:
        return BlobCorruptError(
            f"pack '{path}' is damaged at offset {record.offset} (blob {record.digest}): {what}")

    buf = os.pread(fd, HEADER_SIZE + record.stored, record.offset)
    if len(buf) != HEADER_SIZE + record.stored:
        raise corrupt("the pack ends inside the record")
    if parse_header(buf, record.offset) != record:
        raise corrupt("its header is not the record's")
    result = decode_payload(record, buf[HEADER_SIZE:])  # one copy: what the caller gets, once verified
    if isinstance(result, str):
        raise corrupt(result)
    return result


_ENTRY_ROW = np.dtype([("hash", "S16"), ("offset", "<u8"), ("stored", "<u8"), ("size", "<u8"), ("form", "u1")])


def encode_index(records: tp.Iterable[PackRecord], covered: int) -> bytes:
    """The index file's bytes: entries sorted by hash, the first record of a hash only. Every
    implementation writes the same bytes for the same records. Sorted and laid out with numpy: a loop over
    the records cost a writer's seal about 1.5 us a record."""
    records = list(records)
    table = np.empty(len(records), dtype=_ENTRY_ROW)
    table["hash"] = np.frombuffer(bytes.fromhex("".join([r.digest for r in records])), dtype="S16")
    table["offset"] = [r.offset for r in records]
    table["stored"] = [r.stored for r in records]
    table["size"] = [r.size for r in records]
    table["form"] = [r.form for r in records]
    table = table[np.lexsort((table["offset"], table["hash"]))]  # by hash, then the lowest offset first
    if len(table) > 1:
        table = table[np.concatenate(([True], table["hash"][1:] != table["hash"][:-1]))]
    fanout = np.cumsum(np.bincount(np.frombuffer(table["hash"].tobytes(), dtype=np.uint8)[::16], minlength=256))
    body = b"".join([INDEX_MAGIC, struct.pack("<IQ", len(table), covered), fanout.astype("<u4").tobytes(),
                     table.tobytes()])
    return body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body))


class PackIndex:
    """A sealed pack's index, checked once and then searched through a read-only mapping."""

    def __init__(self, fd: int, path: str) -> None:
        def corrupt(what: str) -> BlobCorruptError:
            return BlobCorruptError(f"pack index '{path}' is damaged: {what}")

        length = os.fstat(fd).st_size
        if length < INDEX_HEADER + TRAILER_SIZE or length > (1 << 31) - 1:
            raise corrupt(f"it is {length} bytes long")
        self.map = mmap.mmap(fd, length, access=mmap.ACCESS_READ)
        m = self.map
        if m[:4] != INDEX_MAGIC:
            raise corrupt("it does not start with CPI1")
        self.count, self.covered = struct.unpack_from("<IQ", m, 4)
        if length != INDEX_HEADER + self.count * ENTRY_SIZE + TRAILER_SIZE:
            raise corrupt(f"it is {length} bytes long for {self.count} entries")
        body = length - TRAILER_SIZE
        if xxhash.xxh3_64_intdigest(m[:body]) != struct.unpack_from("<Q", m, body)[0]:
            raise corrupt("its checksum does not match")
        self.fanout = struct.unpack_from("<256I", m, 16)
        previous = 0
        for slot, value in enumerate(self.fanout):
            if value < previous:
                raise corrupt(f"its fan-out table decreases at {slot}")
            previous = value
        if previous != self.count:
            raise corrupt(f"its fan-out table ends at {previous}")
        if self.count:
            self._check_entries(m[INDEX_HEADER:body], corrupt)

    def _check_entries(self, raw: bytes, corrupt: tp.Callable[[str], BlobCorruptError]) -> None:
        """Every entry in its fan-out range, in strictly increasing order, of a known form and within
        ``covered``; the first entry that fails is named with the first check it fails. With numpy over the
        whole table: a Python loop cost a reader about 5 us an entry, on every pack it opens."""
        table = np.frombuffer(raw, dtype=_ENTRY_TABLE, count=self.count)
        hi, lo = table["hi"], table["lo"]
        at = np.arange(self.count)
        fanout = np.array(self.fanout, dtype=np.int64)
        slot = (hi >> np.uint64(56)).astype(np.intp)
        starts = np.concatenate(([0], fanout[:-1]))
        bad_range = (at < starts[slot]) | (at >= fanout[slot])
        bad_order = np.zeros(self.count, dtype=bool)
        bad_order[1:] = ~((hi[1:] > hi[:-1]) | ((hi[1:] == hi[:-1]) & (lo[1:] > lo[:-1])))
        offset, stored = table["offset"], table["stored"]
        if self.covered >= HEADER_SIZE:  # a record's end, offset + 41 + stored, within covered (no overflow)
            room = np.uint64(self.covered - HEADER_SIZE)
            outside = (stored > room) | (offset > room - np.minimum(stored, room))
        else:
            outside = np.ones(self.count, dtype=bool)
        bad_bounds = outside | (table["size"] > MAXIMUM_SIZE) | (table["form"] > LZ4)
        failed = bad_range | bad_order | bad_bounds
        if failed.any():
            i = int(np.argmax(failed))
            if bad_range[i]:
                raise corrupt(f"entry {i} is outside its fan-out range")
            if bad_order[i]:
                raise corrupt(f"entry {i} is out of order")
            raise corrupt(f"entry {i} lies outside the {self.covered} bytes it covers")

    def entry(self, i: int) -> PackRecord:
        digest, offset, stored, size, form = _ENTRY.unpack_from(self.map, INDEX_HEADER + i * ENTRY_SIZE)
        return PackRecord(digest.hex(), form, size, stored, offset)

    def position(self, key: bytes) -> int:
        """Where the entry of a hash's 16 bytes starts in the mapping, -1 when the index has none."""
        slot = key[0]
        lo, hi = (self.fanout[slot - 1] if slot else 0), self.fanout[slot]
        m = self.map
        while lo < hi:
            mid = (lo + hi) // 2
            at = INDEX_HEADER + mid * ENTRY_SIZE
            found = m[at:at + 16]
            if found == key:
                return at
            if found < key:
                lo = mid + 1
            else:
                hi = mid
        return -1

    def lookup(self, digest: str) -> tp.Optional[PackRecord]:
        return self.lookup_key(bytes.fromhex(digest))

    def lookup_key(self, key: bytes, digest: tp.Optional[str] = None) -> tp.Optional[PackRecord]:
        """:meth:`lookup` of a hash's 16 bytes (and its hex form, when the caller has it)."""
        at = self.position(key)
        if at < 0:
            return None
        found, offset, stored, size, form = _ENTRY.unpack_from(self.map, at)
        return PackRecord(found.hex() if digest is None else digest, form, size, stored, offset)

    def close(self) -> None:
        self.map.close()


def pack_id(name: str, suffix: str) -> tp.Optional[str]:
    """The pack id of a ``packs/`` entry name with ``suffix``: one or more of ``[A-Za-z0-9_-]``."""
    if not name.endswith(suffix):
        return None
    ident = name[: -len(suffix)]
    raw = ident.encode("utf-8", "surrogateescape")
    return ident if raw and all(b in _ID_BYTES for b in raw) else None


def _open_regular(path: str) -> tp.Optional[int]:
    """A descriptor on a regular file, never through a link; None when it vanished or is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP):  # vanished, or a symbolic link (never followed)
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _publish_index(folder: str, ident: str, data: bytes, durable: bool, flush_folder: tp.Optional[bool] = None) -> None:
    """Publishes ``<id>.idx`` through a temp file in ``packs/``, never replacing an existing one; the temp
    file is flushed when ``durable``, ``packs/`` when ``flush_folder`` (default: ``durable``)."""
    flush_folder = durable if flush_folder is None else flush_folder
    tmp = os.path.join(folder, f"{sanitized_host()}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, os.path.join(folder, ident + INDEX_SUFFIX))
        except FileExistsError:
            pass  # sealed already by someone who judged the writer dead: the same bytes
        if flush_folder:
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _sync_file_range() -> tp.Optional[tp.Callable[..., int]]:
    try:
        import ctypes  # numpy imports it already

        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):  # not Linux, or no such call
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call  # type: ignore[no-any-return]


_SYNC_FILE_RANGE = _sync_file_range() if sys.platform.startswith("linux") else None
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Starts writing ``length`` bytes at ``offset`` to the disk without waiting (Linux
    ``sync_file_range(SYNC_FILE_RANGE_WRITE)``): the batch's ``fdatasync`` then finds most of a pack's records
    written (2-3 ms instead of 4-9 ms for 4 MiB here). No durability rests on it; elsewhere a no-op."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class _OpenPack:
    def __init__(self, ident: str, fd: int, lease: Lease) -> None:
        self.id, self.fd, self.lease = ident, fd, lease
        self.length = 0  # the end of the last record appended, written or still in ``buffer``
        self.records: list[PackRecord] = []
        self.digests: dict[str, PackRecord] = {}
        self.unsynced = False
        self.buffer = bytearray()  # whole records not written yet: they end the pack, in order
        self.started = time.monotonic()  # a shelf that looked at packs/ before this cannot know the pack
        self.silence = lease.silence_limit  # Lease.lost's bound, for the fast path's check


_WRITERS: "weakref.WeakSet[PackWriter]" = weakref.WeakSet()  # this process's writers, for drain_writers()


def drain_writers() -> None:
    """Writes the records that this process's writers keep in memory, so that a read of a payload a
    session has just put finds it in its pack (a reader in another process waits for the commit anyway)."""
    for writer in list(_WRITERS):
        if writer.pid == _PID[0] and writer._open is not None and writer._open.buffer:
            try:
                writer.drain()
            except OSError:
                pass  # the writer abandoned the pack and raises at its next flush


class PackWriter:
    """A writer's own packs: appends small payloads to one open pack at a time, which only it appends to,
    and seals each pack when it is full or the writer ends. While a pack is open its writer holds the lease
    ``packs/<id>.lease``, so anyone may seal a pack whose writer died and no one seals a live writer's.
    After a failed write or a lost lease the pack is left as it is and the payload goes to a new pack."""

    def __init__(self, folder: str, writer_id: str, target_size: int = 16 << 20, compress: bool = False,
                 durable: bool = True, flush_folder: tp.Optional[bool] = None) -> None:
        self.folder, self.writer_id, self.target_size = folder, writer_id, target_size
        self.compress, self.durable = compress, durable
        # packs/ is flushed after a seal under durability "fsync" only (FORMAT 3.7): an index whose name a
        # power loss takes leaves a pack that anyone seals again
        self.flush_folder = durable if flush_folder is None else flush_folder
        self.pid = _PID[0]  # a forked child never appends to its parent's pack: it makes its own writer
        self._sequence = 0
        self._open: tp.Optional[_OpenPack] = None
        # a group commit's timer thread flushes while the session's thread appends
        self._lock = threading.RLock()
        self._failed: tp.Optional[OSError] = None  # records lost by a failed write, raised by the next sync
        # the records of the packs this writer sealed, newest first, for its own dedup probe (PackShelf.probe):
        # a dict lookup each instead of a search of each pack's index; the oldest are dropped past
        # OWN_SEALED_MAX packs (their indexes are then searched as any other writer's)
        self.sealed: list[tuple[str, tp.Mapping[str, PackRecord], float]] = []
        self._sealing: list[tuple[_OpenPack, threading.Lock]] = []  # packs sealed by a thread, oldest first
        self._sealing_lock = threading.Lock()
        self.own_ids: set[str] = set()  # the packs of the tables above, and the open one
        _WRITERS.add(self)

    @property
    def open_pack_id(self) -> tp.Optional[str]:
        return self._open.id if self._open else None

    def record_of(self, digest: str) -> tp.Optional[tuple[str, PackRecord]]:
        pack = self._open
        if pack is None or digest not in pack.digests:
            return None
        return pack.id, pack.digests[digest]

    def open_records(self) -> tp.Mapping[str, PackRecord]:
        """The records of the open pack by hash (kept by the caller after a seal: no one removes them)."""
        with self._lock:
            return self._open.digests if self._open is not None else {}

    def append(self, payload: tp.Any, digest: str) -> tuple[str, PackRecord]:
        """Appends a payload (its digest computed by the caller), not flushed: :meth:`sync` flushes a batch
        before its index lines are written. A payload already in the open pack is not written again."""
        with self._lock:
            pack = self._open
            if pack is not None and digest in pack.digests:
                return pack.id, pack.digests[digest]
            if pack is not None and pack.lease.lost:
                if pack.unsynced or pack.buffer:
                    # its records not flushed yet may never reach the disk, or lie past the index of whoever
                    # took the lease over: the next sync fails, so no line names them (the batch is lost)
                    self._failed = self._failed or OSError(
                        errno.EBUSY, f"the lease of pack '{os.path.join(self.folder, pack.id + PACK_SUFFIX)}' was "
                        "lost before its records were flushed; they are not committed")
                self._abandon()
            try:
                return self._append_once(payload, digest)
            except OSError:
                self._abandon()  # the pack may end with part of a record: never append to it again
                return self._append_once(payload, digest)

    def append_raw(self, data: tp.Any, digest: str, size: int, now: float) -> None:
        """:meth:`append` for the write fast path: ``data`` a C-contiguous buffer of ``size`` bytes (below
        MAXIMUM_SIZE), ``now`` the caller's ``time.monotonic()``. A raw record's header and bytes go
        straight into the run; anything else (no open pack, a lost lease, LZ4, a full run) takes
        :meth:`append`, which writes the same bytes."""
        with self._lock:
            pack = self._open
            if (pack is None or self.compress or len(pack.buffer) + HEADER_SIZE + size > APPEND_BUFFER
                    or pack.length + HEADER_SIZE + size >= self.target_size):
                self.append(data, digest)
                return
            lease = pack.lease
            if lease._lost or now - lease._last_refresh > pack.silence:  # Lease.lost, without two calls
                self.append(data, digest)
                return
            if digest in pack.digests:
                return
            offset = pack.length
            head = _HEAD.pack(RECORD_MAGIC, bytes.fromhex(digest), RAW, size, size)
            buffer = pack.buffer
            buffer += head
            buffer += _CHECK.pack(xxhash.xxh32_intdigest(head))
            buffer.extend(data)  # through the buffer protocol (``+=`` would be numpy's addition)
            pack.length = offset + HEADER_SIZE + size
            record = PackRecord(digest, RAW, size, size, offset)
            pack.records.append(record)
            pack.digests[digest] = record
            pack.unsynced = True

    def _append_once(self, payload: tp.Any, digest: str) -> tuple[str, PackRecord]:
        pack = self._open or self._start()
        if pack.buffer and len(pack.buffer) + HEADER_SIZE + memoryview(payload).nbytes > APPEND_BUFFER:
            self._drain(pack)
            pack = self._open or self._start()  # a failed write abandoned the pack: the payload goes to a new one
        record, stored = encode_record(payload, digest, self.compress, pack.length)
        # records are written in runs (one write of several whole records, FORMAT 3.7), before any flush
        pack.buffer += encode_header(record)
        pack.buffer += stored
        pack.length = record.offset + HEADER_SIZE + record.stored
        pack.records.append(record)
        pack.digests[digest] = record
        pack.unsynced = True
        ident = pack.id
        if len(pack.buffer) >= APPEND_BUFFER:
            self._drain(pack)
        if self._open is pack and pack.length >= self.target_size:
            self._seal_behind()
        return ident, record

    def drain(self) -> None:
        """Writes the records kept in memory to the open pack (not flushed)."""
        with self._lock:
            if self._open is not None:
                self._drain(self._open)

    def _drain(self, pack: _OpenPack) -> None:
        """One write of the buffered records (more if the kernel writes less). After a failure the pack is
        abandoned and the records it lost make the next :meth:`sync` fail, so no line names them."""
        data = memoryview(pack.buffer)
        start = pack.length - len(data)
        try:
            while data:
                data = data[os.write(pack.fd, data):]
        except OSError as e:
            self._failed = e
            data.release()
            self._abandon()
            return
        data.release()
        if self.durable:
            start_writeback(pack.fd, start, len(pack.buffer))
        pack.buffer = bytearray()

    def _raise_failed(self) -> None:
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    def sync(self) -> None:
        """Writes and flushes the open pack's records (``fdatasync``). A failed write or flush leaves the pack
        to be sealed by others and is raised: the batch's lines must not be written."""
        with self._lock:
            pack = self._open
            if pack is not None and pack.buffer:
                self._drain(pack)
            self._raise_failed()
            if pack is None or not pack.unsynced:
                pack = None
            else:
                appended = len(pack.records)
                fd = os.dup(pack.fd)  # flushed without the lock: the session appends meanwhile
        if pack is not None:
            try:
                os.fdatasync(fd)
            except OSError:
                with self._lock:
                    if self._open is pack:
                        self._abandon()
                raise
            finally:
                os.close(fd)
            with self._lock:
                if len(pack.records) == appended and not pack.buffer:
                    pack.unsynced = False
        # the packs sealed behind, started before this flush, hold records of the batch too
        self._join_sealing()
        with self._lock:
            self._raise_failed()

    def seal(self) -> None:
        """Flushes the open pack, publishes its index (never replacing one) and releases its lease; an
        empty pack is removed instead. Returns once the packs sealed behind are sealed too."""
        with self._lock:
            self._seal()
        self._join_sealing()
        with self._lock:
            self._raise_failed()

    def _seal_behind(self) -> None:
        """Seals the full open pack in a thread while the session fills the next one (its flushes took
        5-20 ms of the session's time per 16 MiB here); :meth:`sync` waits for it before a batch's lines
        are written, and a failure fails that batch as a failed flush does."""
        pack = self._open
        assert pack is not None
        if pack.buffer:
            self._drain(pack)
            if self._failed is not None:  # abandoned (see _seal)
                return
        self._open = None
        with self._sealing_lock:
            self._sealing.append((pack, _spawn(self._finish_behind, pack)))

    def _finish_behind(self, pack: _OpenPack) -> None:
        try:
            self._finish(pack)
        except BaseException as e:  # raised by the next sync or seal: no line names the pack's records
            self._failed = e if isinstance(e, OSError) else OSError(errno.EIO, f"sealing pack {pack.id}: {e}")

    def _join_sealing(self) -> None:
        """Waits for the packs sealed behind (their records flushed, their indexes published)."""
        while True:
            with self._sealing_lock:
                if not self._sealing:
                    return
                pack, done = self._sealing[0]
            done.acquire()
            done.release()
            with self._sealing_lock:  # two joiners wake together: only one pops, and only this pack
                if self._sealing and self._sealing[0][0] is pack:
                    self._sealing.pop(0)

    def holds(self, digest: str) -> bool:
        """Whether a pack of this writer holds the payload: open, being sealed, or sealed (its table
        kept). No one else removes such a record while its session's batches are written (GC removes a
        pack at once only when every record is held elsewhere, and a retired one after a grace)."""
        pack = self._open
        if pack is not None and digest in pack.digests:
            return True
        for sealing, _ in list(self._sealing):
            if digest in sealing.digests:
                return True
        for _, records, _ in self.sealed:
            if digest in records:
                return True
        return False

    def _seal(self) -> None:
        pack = self._open
        if pack is None:
            return
        if pack.buffer:
            self._drain(pack)
            if self._failed is not None:  # abandoned: its records are not all there to index (the next
                raise self._failed  # sync raises it too, so no line names the records it lost)
        self._open = None
        self._finish(pack)

    def _finish(self, pack: _OpenPack) -> None:
        """Flushes a pack taken out of ``_open``, publishes its index, closes it and releases its lease."""
        sealed = False
        try:
            if not pack.records:
                os.unlink(os.path.join(self.folder, pack.id + PACK_SUFFIX))
                return
            if self.durable and pack.unsynced:
                try:
                    os.fdatasync(pack.fd)
                except OSError as e:
                    self._failed = e  # a batch being committed must not write lines naming its records
                    raise
            _publish_index(self.folder, pack.id, encode_index(pack.records, pack.length), self.durable,
                           self.flush_folder)
            self.sealed.insert(0, (pack.id, pack.digests, pack.started))
            if len(self.sealed) > OWN_SEALED_MAX:
                self.own_ids.discard(self.sealed.pop()[0])
            sealed = True
        finally:
            if not sealed:
                self.own_ids.discard(pack.id)
            os.close(pack.fd)
            pack.lease.release()

    close = seal

    def seal_if_large(self) -> None:
        """Seals the open pack if it holds a quarter of the target size or more. Kept open between write
        sessions (casket.kept), a pack gains records cheaply, but other readers must scan it record by
        record (about 4 us each in Python, against 0.5 us through an index): only a small one, which GC
        would combine with others anyway, is worth keeping open."""
        with self._lock:
            pack = self._open
            if pack is not None and pack.length >= self.target_size // 4:
                self._seal()

    def abandon_if_gone(self) -> bool:
        """True, after leaving it unsealed, when the open pack's path no longer names the file this writer
        appends to (the store was removed or replaced, as ``CacheDict.clear()`` does): its index must not be
        published into another store's ``packs/``."""
        with self._lock:
            pack = self._open
            if pack is None:
                return False
            try:
                gone = not os.path.samestat(os.fstat(pack.fd), os.stat(os.path.join(self.folder, pack.id + PACK_SUFFIX)))
            except FileNotFoundError:
                gone = True
            if gone:
                self._abandon()
            return gone

    def _abandon(self) -> None:
        pack, self._open = self._open, None
        if pack is not None:
            self.own_ids.discard(pack.id)  # sealed by others, its index is searched as theirs
            os.close(pack.fd)
            pack.lease.release()

    def _start(self) -> _OpenPack:
        while True:
            self._sequence += 1
            ident = f"{self.writer_id}-{self._sequence}"
            # not flushed: after a crash the owner is gone whatever the lease holds, and a lease that
            # comes back empty is judged by its age (FORMAT 3.7)
            lease = Lease.acquire(Path(self.folder, ident + LEASE_SUFFIX), {}, LEASE_TTL, LEASE_TTL / 4, False)
            if not isinstance(lease, Lease):
                continue
            try:
                fd = os.open(os.path.join(self.folder, ident + PACK_SUFFIX),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o444)
            except FileExistsError:
                lease.release()
                continue
            except BaseException:
                lease.release()
                raise
            self._open = _OpenPack(ident, fd, lease)
            self.own_ids.add(ident)
            return self._open


class _KnownPack:
    def __init__(self, ident: str, fd: int, path: str) -> None:
        self.id, self.fd, self.path = ident, fd, path
        # closed with the shelf that knew it, when nothing closed it before: a store dropped (a CacheDict
        # made per call) left a descriptor per pack open
        self._closer = weakref.finalize(self, os.close, fd)
        self._closer.atexit = False  # at exit a reader's daemon thread may still read it: the exit closes it
        self.index: tp.Optional[PackIndex] = None
        self.retired = False  # GC is replacing it (FORMAT 3.9): no writer dedups against it
        self.scanned = 0
        self.records: dict[str, PackRecord] = {}
        self.hashes: tp.Optional[list[str]] = None  # the hashes it put in its shelf's table of raw records

    def lookup(self, digest: str, key: bytes) -> tp.Optional[PackRecord]:
        return self.index.lookup_key(key, digest) if self.index is not None else self.records.get(digest)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
        self._closer()  # os.close(self.fd), once


def _raise_open_file_limit() -> None:
    """Raises the soft limit on open descriptors to the hard limit, once per process: a reader keeps each
    pack open (a descriptor, and one more behind each index's mapping), and a store of ten million small
    values holds thousands of packs, past the soft limit of 1,024 many systems give a process (the Swift
    side does the same, as the Go runtime does)."""
    global _LIMIT_RAISED
    if _LIMIT_RAISED:
        return
    _LIMIT_RAISED = True
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, OSError, ValueError):
        pass  # a limit we may not raise stays as it is: the reader works until it reaches it


_LIMIT_RAISED = False


class _ProbeTable:
    """The first 8 bytes of every entry of some sealed packs' indexes, sorted, with the pack of each, for a
    writer's dedup probe: a miss costs one binary search (numpy) instead of one search per pack (a store of
    hundreds of packs paid hundreds a new payload). 12 bytes an entry, copied out of the mappings."""

    def __init__(self, packs_: list[_KnownPack]) -> None:
        self.packs = packs_
        his, owners = [], []
        for n, pack in enumerate(packs_):
            index = pack.index
            assert index is not None
            if index.count:
                table = np.frombuffer(index.map, dtype=_ENTRY_TABLE, count=index.count, offset=INDEX_HEADER)
                his.append(table["hi"].astype(np.uint64))  # a copy: the mapping is closed with its pack
                del table
                owners.append(np.full(index.count, n, dtype=np.int32))
        hi = np.concatenate(his) if his else np.empty(0, dtype=np.uint64)
        owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.int32)
        order = np.argsort(hi, kind="stable")
        self.hi, self.owner = hi[order], owner[order]

    def candidates(self, key: bytes) -> list[_KnownPack]:
        """The packs whose index may hold the hash of these 16 bytes (one in most hits, none in a miss)."""
        hi = np.uint64(int.from_bytes(key[:8], "big"))
        start, end = self.hi.searchsorted(hi), self.hi.searchsorted(hi, "right")
        if start == end:
            return []
        return [self.packs[n] for n in self.owner[start:end].tolist()]


class PackShelf:
    """What a process knows of ``packs/``: the listing, each sealed pack's index (mapped), the records of
    open packs scanned so far. The listing is read again only on a miss, when the folder's mtime changed
    (or changed so recently that a change in the same tick could hide behind it); open packs are scanned
    on from where the last scan stopped. A hit costs no system call."""

    def __init__(self, folder: str) -> None:
        _raise_open_file_limit()
        self.folder = folder
        self._packs: dict[str, _KnownPack] = {}
        self._listed_at: tp.Optional[int] = None
        self._racy = True
        self._probed = -PROBE_INTERVAL  # when probe last looked at the folder (monotonic)
        self._lock = threading.Lock()
        self._last: tp.Optional[_KnownPack] = None  # the pack of the last hit
        self._changed = 0  # bumped when a pack is dropped or gets its index: the probe's lists are redone
        self._probe_seen = -1
        self._probe_table: tp.Optional[_ProbeTable] = None  # the sealed packs a probe searches at once
        self._probe_each: list[_KnownPack] = []  # those it searches one by one (new since the table, unsealed)
        # hash -> (pack, offset, size) of the raw records of every sealed pack a read has found a payload in:
        # the read fast path (read_raw) looks up a hash in one dict instead of a search of each pack's index.
        # Filled from a pack's index the first time a read finds it there; a pack dropped takes its rows out
        self._raw: dict[str, tuple[_KnownPack, int, int]] = {}

    def find(self, digest: str) -> tp.Optional[tuple[str, PackRecord]]:
        found = self._locate(digest)
        return (found[0].id, found[1]) if found else None

    def probe(self, digest: str, own: tp.Optional["PackWriter"] = None, now: tp.Optional[float] = None
              ) -> tp.Optional[tuple[str, PackRecord]]:
        """:meth:`find` for a writer's dedup check, where a miss costs at most a copy. It never answers from a
        retired pack (FORMAT 3.9: GC may delete it once a grace has passed), and looks at the folder before
        answering whenever its last look is PROBE_INTERVAL seconds old, hit or miss, so a ``.retired``
        notice is seen within that bound. A look lists the folder only when its mtime changed or the
        listing may have raced a change; other writers' open packs are not scanned on. ``own``, the
        asking writer: the packs it sealed are looked up in the records it kept (a dict each), not searched,
        and its open pack, which the caller has looked in, is skipped. ``now``: the caller's monotonic clock."""
        key = None
        with self._lock:
            if now is None:
                now = time.monotonic()
            if now - self._probed >= PROBE_INTERVAL:
                self._probed = now
                self._refresh(thorough=False)
            packs = self._packs
            skip: tp.Collection[str] = ()
            if own is not None:
                for ident, records, started in own.sealed:
                    record = records.get(digest)
                    if record is not None:
                        known = packs.get(ident)
                        # unknown to the shelf: made since its last look, or removed by GC (every record
                        # held elsewhere, GC.md) and then not an answer
                        if known is not None and not known.retired or known is None and started >= self._probed:
                            return ident, record
                skip = own.own_ids
            key = bytes.fromhex(digest)
            last = self._last
            if last is not None and not last.retired and last.id not in skip:
                record = last.lookup(digest, key)
                if record is not None:
                    return last.id, record
            if self._probe_seen != self._changed:
                self._plan_probe()
            table = self._probe_table
            for pack in (self._probe_each if table is None else (*table.candidates(key), *self._probe_each)):
                if pack is last or pack.retired or pack.id in skip or packs.get(pack.id) is not pack:
                    continue  # (a pack read() dropped is still in the lists until the next listing)
                record = pack.lookup(digest, key)
                if record is not None:
                    self._last = pack
                    return pack.id, record
        return None

    def _plan_probe(self) -> None:
        """What a probe searches, redone when the known packs changed: the sealed packs in one table once
        more than PROBE_MERGE of them are not in it, the others (and the unsealed) one by one. A table
        holding a pack that is gone is made again."""
        self._probe_seen = self._changed
        packs = self._packs
        table = self._probe_table
        if table is not None and any(packs.get(p.id) is not p for p in table.packs):
            table = None
        held = {id(p) for p in table.packs} if table is not None else set()
        sealed = [p for p in packs.values() if p.index is not None]
        each = [p for p in sealed if id(p) not in held]
        if len(each) > PROBE_MERGE:
            table, each = _ProbeTable(sealed), []
        self._probe_table = table
        self._probe_each = each + [p for p in packs.values() if p.index is None]

    def read(self, digest: str, size: tp.Optional[int] = None) -> tp.Optional[bytes]:
        """The verified payload of ``digest`` if a pack holds it (with ``size`` bytes, when given), else None.
        A pack that fails under the read (``ESTALE`` on NFS once GC removed it) is dropped and the folder
        listed again: GC publishes the new pack before it removes the old one."""
        lost = None
        while True:
            if lost is not None:
                with self._lock:
                    gone = self._packs.pop(lost, None)
                    if gone is not None:
                        if gone is self._last:
                            self._last = None
                        self._forget(gone)
                        gone.close()
                    self._listed_at = None
            found = self._locate(digest)
            if found is None or (size is not None and found[1].size != size):
                return None
            pack, record = found
            try:
                return read_payload(pack.fd, pack.path, record)
            except OSError:
                if lost is not None:
                    raise
                lost = pack.id

    def read_aligned(self, digest: str, size: int) -> tp.Optional[tp.Any]:
        """:meth:`read` for an array: the verified payload as a buffer (a new aligned numpy byte array for a
        raw record, which the caller may view as any dtype). A raw record costs one ``preadv`` of its header
        and of its payload straight into that array, the comparison of the header with what the index (or
        the scan) gave, and one hash; the pack of the last hit is searched first without any other lookup.
        Anything else (LZ4, a record that fails a check, a lost pack) takes :meth:`read`, which names the
        damage."""
        key = bytes.fromhex(digest)
        with self._lock:
            pack = self._last
            index = pack.index if pack is not None else None
            at = index.position(key) if index is not None else -1
            fields = _ENTRY.unpack_from(index.map, at)[1:] if at >= 0 else None  # type: ignore[union-attr]
        if fields is None:
            found = self._locate(digest)
            if found is None:
                return None
            pack, record = found
            fields = (record.offset, record.stored, record.size, record.form)
        offset, stored, found_size, form = fields
        if form == RAW and found_size == size == stored:
            assert pack is not None
            head, payload = bytearray(HEADER_SIZE), np.empty(size, dtype=np.uint8)
            try:
                got = os.preadv(pack.fd, [head, payload], offset)
            except OSError:
                got = -1  # read() drops a pack lost under it and lists the folder again
            if (got == HEADER_SIZE + size and _HEAD.unpack_from(head) == (RECORD_MAGIC, key, RAW, size, stored)
                    and _CHECK.unpack_from(head, 37)[0] == xxhash.xxh32_intdigest(memoryview(head)[:37])
                    and xxhash.xxh3_128_hexdigest(payload) == digest):
                if pack.hashes is None and pack.index is not None:
                    self._table(pack)
                return payload
        return self.read(digest, size)

    def read_raw(self, digest: str, out: np.ndarray, size: int) -> bool:
        """The read fast path of a packed raw array: reads the payload of ``digest`` (``size`` bytes) into
        ``out`` (a new C-contiguous array of that many bytes, aligned for its dtype, which the caller makes
        of the type it returns) when the table of raw records has its hash, with the checks of
        :meth:`read_aligned`: its header is the record's (magic, hash, form, size, stored, the header check)
        and its bytes hash to ``digest``. False otherwise (not in the table, another size, a short or failed
        read, a check that fails), and the caller then takes the general path, which finds, relists and
        names the damage as it always does: an answer of this path is one the general path would give, and
        no error comes from it."""
        hit = self._raw.get(digest)
        if hit is None:
            return False
        pack, offset, found = hit
        if found != size:
            return False
        head = bytearray(HEADER_SIZE)
        try:
            got = os.preadv(pack.fd, [head, out], offset)
        except (OSError, ValueError):  # a pack closed meanwhile, or lost (ESTALE): the general path's to judge
            return False
        # the header a raw record of this hash and size has, whole: magic, hash, form, size, stored, then the
        # check, which equals the check of the bytes read exactly when they are these (one comparison)
        expected = _HEAD.pack(RECORD_MAGIC, bytes.fromhex(digest), RAW, size, size)
        return (got == HEADER_SIZE + size and head == expected + _CHECK.pack(xxhash.xxh32_intdigest(expected))
                and xxhash.xxh3_128_hexdigest(out) == digest)

    def _table(self, pack: _KnownPack) -> None:
        """Puts the raw records of a sealed pack's index in the table of :meth:`read_raw`: with numpy, about
        0.5 us an entry, paid once per pack a read finds something in (a writer's dedup probe never pays it;
        a binary search of the index costs a read 1.3 us). It holds about 230 bytes an entry (``tracemalloc``),
        less than half of what the index reader holds for the line that names the payload."""
        index = pack.index
        assert index is not None
        with self._lock:
            if pack.hashes is not None or self._packs.get(pack.id) is not pack:
                return
            # a copy of the entries: a view would keep the mapping from being closed
            table = np.frombuffer(index.map[INDEX_HEADER:INDEX_HEADER + index.count * ENTRY_SIZE], dtype=_ENTRY_ROW)
            raw = table[(table["form"] == RAW) & (table["stored"] == table["size"])]
            text = raw["hash"].tobytes().hex()
            hashes = [text[i:i + 32] for i in range(0, len(text), 32)]
            self._raw.update(zip(hashes, zip(itertools.repeat(pack), raw["offset"].tolist(), raw["size"].tolist())))
            pack.hashes = hashes

    def _forget(self, pack: _KnownPack) -> None:
        """Takes a pack dropped from the shelf out of the table of raw records (the caller holds the lock)."""
        raw = self._raw
        for h in pack.hashes or ():
            hit = raw.get(h)
            if hit is not None and hit[0] is pack:
                del raw[h]
        pack.hashes = None

    def pack_ids(self) -> list[tuple[str, bool]]:
        with self._lock:
            self._refresh()
            return sorted((p.id, p.index is not None) for p in self._packs.values())

    def _search(self, digest: str, retired: bool = True) -> tp.Optional[tuple[_KnownPack, PackRecord]]:
        key = bytes.fromhex(digest)
        last = self._last  # payloads written together are mostly read together: their pack first
        if last is not None and (retired or not last.retired):
            record = last.lookup(digest, key)
            if record is not None:
                return last, record
        for pack in self._packs.values():
            if pack is last or (pack.retired and not retired):
                continue
            record = pack.lookup(digest, key)
            if record is not None:
                self._last = pack
                return pack, record
        return None

    def _locate(self, digest: str, thorough: bool = True) -> tp.Optional[tuple[_KnownPack, PackRecord]]:
        with self._lock:
            found = self._search(digest)
        if found is not None:
            return found
        drain_writers()  # a payload this process has just put may still be in its writer's memory
        with self._lock:
            found = self._search(digest)
            if found is None:
                self._refresh(thorough)
                found = self._search(digest)
            return found

    def _refresh(self, thorough: bool = True) -> None:
        """Lists the folder again if it changed (or may have changed unseen), then, when ``thorough``, scans
        the open packs on. A listing is taken again while packs vanish under it (a known pack is gone, or
        one listed could not be opened) or the folder changed while it ran: GC publishes a repacked pack
        before it removes the old one, so a listing that starts after the removal holds the new pack."""
        try:
            before = os.stat(self.folder, follow_symlinks=False).st_mtime_ns
        except FileNotFoundError:
            return
        if self._racy or before != self._listed_at:
            for _ in range(RELIST_ATTEMPTS):
                lost = self._relist()
                after = os.stat(self.folder, follow_symlinks=False).st_mtime_ns
                self._listed_at = before
                self._racy = time.time_ns() - after < RACY_WINDOW_NS
                if not lost and after == before:
                    break
                before = after
        if not thorough:
            return
        for pack in self._packs.values():
            if pack.index is not None:
                continue
            length = os.fstat(pack.fd).st_size
            if length > pack.scanned:
                found, pack.scanned = scan_records(pack.fd, length, pack.scanned)
                if pack.hashes is None:
                    pack.hashes = []
                for record, _ in found:
                    if pack.records.setdefault(record.digest, record) is record and record.form == RAW \
                            and record.stored == record.size:
                        # an open pack's raw records serve read_raw too (a writer keeps its pack open
                        # between sessions, casket.kept): read, checked and hashed as a sealed one's
                        self._raw[record.digest] = (pack, record.offset, record.size)
                        pack.hashes.append(record.digest)

    def _relist(self) -> bool:
        """Lists ``packs/``; returns whether a pack vanished (a known one is not listed, or a listed one
        could not be opened)."""
        packs, indexes, retired = set(), set(), set()
        with os.scandir(self.folder) as it:
            for entry in it:
                if not entry.is_file(follow_symlinks=False):
                    continue
                name = entry.name
                for suffix, names in ((PACK_SUFFIX, packs), (INDEX_SUFFIX, indexes), (RETIRED_SUFFIX, retired)):
                    ident = pack_id(name, suffix)
                    if ident is not None:
                        names.add(ident)
        lost = False
        for ident in [i for i in self._packs if i not in packs]:
            gone = self._packs.pop(ident)
            self._changed += 1
            if gone is self._last:
                self._last = None
            self._forget(gone)
            gone.close()
            lost = True
        for ident in packs:
            known = self._packs.get(ident)
            if known is not None:
                known.retired = ident in retired
                if known.index is not None or ident not in indexes:
                    continue
            if known is None:
                path = os.path.join(self.folder, ident + PACK_SUFFIX)
                fd = _open_regular(path)
                if fd is None:
                    lost = True
                    continue
                known = self._packs[ident] = _KnownPack(ident, fd, path)
                self._changed += 1
                known.retired = ident in retired
            if ident in indexes:
                path = os.path.join(self.folder, ident + INDEX_SUFFIX)
                ifd = _open_regular(path)
                if ifd is None:
                    lost = True
                    continue
                try:
                    index = PackIndex(ifd, path)
                    self._changed += 1
                finally:
                    os.close(ifd)
                self._forget(known)  # rows of its scan, if it was open: its index fills the table from now
                known.index = index
                known.records = {}
        return lost

    def seal(self, ident: str, durable: bool) -> tp.Union[int, str]:
        """Seals a pack whose writer is gone: takes over its stale lease (a live one means the writer is
        alive: ``"writer_alive"``), verifies every record and publishes an index of the sound ones up to
        where the records stop. Returns the number of records indexed, or ``"already_sealed"``."""
        index_path = os.path.join(self.folder, ident + INDEX_SUFFIX)
        if os.path.lexists(index_path):
            return "already_sealed"
        lease = Lease.acquire(Path(self.folder, ident + LEASE_SUFFIX), {}, LEASE_TTL, LEASE_TTL / 4, durable)
        if not isinstance(lease, Lease):
            return "writer_alive"
        try:
            if os.path.lexists(index_path):
                return "already_sealed"
            path = os.path.join(self.folder, ident + PACK_SUFFIX)
            fd = _open_regular(path)
            if fd is None:
                raise StoreError(f"pack '{path}' is missing or not a regular file", "not_found")
            try:
                found, covered = scan_records(fd, os.fstat(fd).st_size, verify=True)
            finally:
                os.close(fd)
            sound = [r for r, flaw in found if flaw is None]
            _publish_index(self.folder, ident, encode_index(sound, covered), durable)
            return len({r.digest for r in sound})
        finally:
            lease.release()
