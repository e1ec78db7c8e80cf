"""Index layer of a Casket store (docs/FORMAT.md section 5): per-writer JSONL files.

- :class:`IndexWriter` owns one ``index/<host>-<pid>-<8hex>.jsonl`` file and only appends to it.
- :class:`IndexReader` reads every index file incrementally and resolves one winner per key.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import json.encoder
import gc
import itertools
import os
import re
import secrets
import stat as _stat
import sys
import threading
import time
import typing as tp
import warnings
from pathlib import Path

from . import timers
from .store import (
    _PID,
    _spawn,
    CasketError,
    Store,
    _fsync_dir,
    check_real_dir,
    describe_kind,
    sanitized_host,
)

__all__ = ["IndexWriter", "IndexReader", "Entry", "MalformedLineWarning", "IndexDebrisWarning", "entry_line"]

READ_CHUNK = 1 << 20


class MalformedLineWarning(UserWarning):
    """An index line was skipped because it is malformed (message: ``file:line: reason``)."""


class IndexDebrisWarning(UserWarning):
    """An entry of ``index/`` is not an index file (a symlink, a directory, a FIFO, a hidden name):
    skipped, never read (message: ``'path' is KIND: not an index file, skipped``)."""


# json.dumps with these arguments builds an encoder per call: one made once writes the same bytes
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_encode_str = json.encoder.encode_basestring


def _dumps(obj: tp.Any) -> bytes:
    return _ENCODE(obj).encode("utf-8")


def entry_line(key: str, ts: int, value: tp.Any, blobs: tp.Sequence[tp.Sequence[tp.Any]]) -> bytes:
    """One set line, compact JSON with key order key, ts, value, blobs, ending in ``\\n``."""
    head, tail = entry_line_parts(key, _dumps(value), blobs)
    return b"%s%d%s" % (head, ts, tail)


def entry_line_parts(key: str, value_json: bytes, blobs: tp.Sequence[tp.Sequence[tp.Any]]) -> tuple[bytes, bytes]:
    """The bytes of a set line before and after its ``ts``, for a value already rendered as JSON: the
    same bytes as :func:`entry_line`'s, without rendering the value again for each ``ts``."""
    plain = True  # hashes are hex digits and sizes integers: nothing to escape (a loop: most lines have one)
    for h, size in blobs:
        if type(size) is not int or type(h) is not str or _HASH_FULLMATCH(h) is None:
            plain = False
            break
    if plain and len(blobs) == 1:
        blob_json = b'[["%s",%d]]' % (blobs[0][0].encode("ascii"), blobs[0][1])
    elif plain:
        blob_json = b"[%s]" % b",".join([b'["%s",%d]' % (h.encode("ascii"), size) for h, size in blobs])
    else:
        blob_json = _dumps([[h, size] for h, size in blobs])
    # a str is rendered by encode_basestring alone (what the encoder calls for one, ensure_ascii off)
    key_json = _encode_str(key).encode("utf-8") if type(key) is str else _dumps(key)
    return b'{"key":%s,"ts":' % key_json, b',"value":%s,"blobs":%s}\n' % (value_json, blob_json)


def tombstone_line(key: str, ts: int) -> bytes:
    return _dumps({"key": key, "ts": ts, "deleted": True}) + b"\n"


def seal_line(ts: int) -> bytes:
    return _dumps({"sealed": True, "ts": ts}) + b"\n"


def is_index_name(name: str) -> bool:
    """An index file's name (FORMAT 5.1): no leading ``.``, ends in ``.jsonl`` or, during compaction,
    ``.jsonl.folding`` (FORMAT 5.6). Its entry must also be a regular file (:func:`list_index_dir`)."""
    return (name.endswith(".jsonl") or name.endswith(".jsonl.folding")) and not name.startswith(".")


def is_compaction_temp(name: str) -> bool:
    """Compaction's unpublished output, ``compact-*.jsonl.tmp``: neither an index file nor debris."""
    return name.startswith("compact-") and name.endswith(".jsonl.tmp")


def list_index_dir(directory: tp.Union[str, Path]) -> tuple[dict[str, os.stat_result], list[tuple[str, str]]]:
    """The one rule for which entries of ``index/`` are index files (FORMAT 5.1), as Swift applies it.

    Returns ``({name: lstat}, [(path, kind), ...])``: index files are entries with an index file's name
    whose own entry (``lstat``) is a regular file. Symlinks (dangling or not) are never followed,
    directories, FIFOs and devices never opened; they and other names are debris. Compaction's temp
    files and ``.nfs*`` files are neither. A name that vanishes meanwhile is simply not listed."""
    if not check_real_dir(directory):  # a link in the place of index/ raises: never followed (FORMAT 1.1)
        return {}, []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}, []
    files: dict[str, os.stat_result] = {}
    debris: list[tuple[str, str]] = []
    base = str(directory)
    for name in names:
        if is_compaction_temp(name) or name.startswith(".nfs"):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # folded or deleted while listing
        if is_index_name(name) and _stat.S_ISREG(st.st_mode):
            files[name] = st
        elif not _stat.S_ISREG(st.st_mode):
            debris.append((path, describe_kind(st.st_mode)))
        elif name.startswith("."):
            debris.append((path, "a hidden file (its name starts with '.')"))
        else:
            debris.append((path, "a file without an index file's name"))
    debris.sort()
    return files, debris


def open_index_file(path: tp.Union[str, Path]) -> tp.Optional[int]:
    """Opens an index file for reading without following a symlink (``O_NOFOLLOW``) or blocking on a
    FIFO (``O_NONBLOCK``); None when it vanished or is no longer a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.ENODEV):  # a symlink, a socket, a device
            return None
        raise
    if not _stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def writer_id_of(name: str) -> str:
    """The writer id of an index file: its name without ``.jsonl`` (or ``.jsonl.folding``)."""
    if name.endswith(".jsonl.folding"):
        return name[: -len(".jsonl.folding")]
    if name.endswith(".jsonl"):
        return name[: -len(".jsonl")]
    return name


# --------------------------------------------------------------------------- writer


GROUP_COUNT = 1000  # group commit (durability "group"): a batch is committed at this many lines,
GROUP_BYTES = 64 << 20  # this many bytes of lines and of the payloads they keep for republishing,
GROUP_SECONDS = 0.2  # or this long after its first line


class IndexWriter:
    """Appends entries to this process's own index file (FORMAT 5.5).

    The file is created on the first append. ``ts`` is strictly increasing across everything this
    writer appends. A writer used in a forked child opens its own file.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._fd: tp.Optional[int] = None
        self._path: tp.Optional[Path] = None
        self._pid = _PID[0]
        self._group = store.group
        self._wid = ""  # the writer id of the current file
        self._last_ts = 0
        self._lock = threading.Lock()
        self.closed = False
        self.files: list[Path] = []  # every file this writer created
        self._lines = 0  # complete lines in the current file
        self.last_origin: tp.Optional[tuple[str, int]] = None  # (writer id, line) of the last append
        # group commit (durability "group", FORMAT 5.5): the batch of lines not written yet, with their blobs
        self._pending: list[tuple[bytes, tp.Sequence[tp.Sequence[tp.Any]], tp.Optional[tp.Callable[[str, int], None]]]] = []
        self._pending_bytes = 0
        self._timer: tp.Optional[timers.Timer] = None
        self._timer_error: tp.Optional[BaseException] = None
        self._packs: tp.Optional[tp.Any] = None  # the session's PackWriter, flushed by every commit
        # held by whoever writes a batch to the file (one at a time, in the order the batches were taken)
        self._io, self._io_pid = threading.Lock(), self._pid
        self._dir_unsynced = False  # group commit: index/ not flushed since this writer made a file in it
        self._taken = 0  # lines taken for commits in the current file, written or being written

    @property
    def path(self) -> tp.Optional[Path]:
        return self._path

    def next_ts(self, after: tp.Optional[int] = None) -> int:
        """Later than the clock, than this writer's last line and than ``after`` (the ts of the key's
        current winner, FORMAT 5.4), so a host whose clock ran ahead cannot freeze a key."""
        floor = self._last_ts if after is None else max(self._last_ts, after)
        if floor >= _I64_END - 1:
            raise CasketError(
                f"an entry has ts {floor}, the greatest a timestamp can be: no write can come after it "
                "(its writer's clock is wrong; docs/FORMAT.md 5.4)")
        ts = max(time.time_ns(), floor + 1)
        self._last_ts = ts
        return ts

    def _open_new(self) -> None:
        self._drop_fd()
        d = self.store.index_dir
        if not self.store.real_dir(d):
            d.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        while True:
            name = f"{sanitized_host()}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
            try:
                fd = os.open(d / name, flags, 0o666)
            except FileExistsError:  # pragma: no cover
                continue
            break
        self._fd, self._path, self._pid = fd, d / name, _PID[0]
        self._wid = writer_id_of(name)
        self._lines = self._taken = 0
        self.files.append(self._path)
        if self._group:
            self._dir_unsynced = True  # flushed by the first commit (in a thread, for a full batch)
        elif self.store.fsync:
            _fsync_dir(d)

    def _drop_fd(self) -> None:
        if self._fd is not None and self._pid == _PID[0]:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self._path = None

    def _write_line(self, line: bytes, count: int = 1, flush: bool = True) -> None:
        """One write of the whole line (or of a batch of ``count`` lines), then fdatasync (unless not
        ``flush``). A short write abandons the file."""
        if self._fd is None or self._pid != _PID[0]:
            self._open_new()
        assert self._fd is not None
        try:
            n = os.write(self._fd, line)
            if n != len(line):
                raise OSError(errno.EIO, f"short write to index file {self._path} ({n} of {len(line)} bytes)")
            self._lines += count
            if flush and self.store.fsync:
                os.fdatasync(self._fd) if hasattr(os, "fdatasync") else os.fsync(self._fd)
        except OSError as e:
            # the file may now end with a partial line: never append to it again
            path = self._path
            self._drop_fd()
            raise CasketError(f"appending to index file {path} failed: {e}") from e

    def _folded(self) -> bool:
        """FORMAT 5.5 step 3: the path no longer names the inode we have open."""
        assert self._fd is not None and self._path is not None
        try:
            st_path = os.stat(self._path)
        except FileNotFoundError:
            return True
        st_fd = os.fstat(self._fd)
        return (st_path.st_dev, st_path.st_ino) != (st_fd.st_dev, st_fd.st_ino)

    def append(
        self,
        line_fn: tp.Callable[[int], bytes],
        blobs: tp.Sequence[tp.Sequence[tp.Any]] = (),
        republish: tp.Optional[tp.Callable[[str, int], None]] = None,
        after: tp.Optional[int] = None,
    ) -> int:
        """Append the line ``line_fn(ts)``; returns ``ts``, greater than ``after`` (the ts of the key's
        winner the caller has read: its write must win, FORMAT 5.4).

        Steps 2-4 of FORMAT 5.5: write + flush, re-append to a new file if the file was folded away
        by compaction, then check that each ``[hash, size]`` of ``blobs`` still exists and call
        ``republish(hash, size)`` for any missing one (raise if missing and no ``republish``).
        """
        with self._lock:
            if self.closed:
                raise CasketError("index writer is closed")
            self._raise_timer_error()
            ts = self.next_ts(after)
            line = line_fn(ts)
            if self._group:
                self._batch(line, blobs, republish)
                return ts
            self.store.sync_packs()  # a line never reaches the disk before the packed bytes it names
            try:
                self._write_line(line)
            except CasketError:
                # FORMAT 5.5: the file may now end with part of the line and was abandoned; write the line
                # once more, in a new file (a duplicate line is harmless)
                self._write_line(line)
            for _ in range(10):
                if not self._folded():
                    break
                self._open_new()  # compaction took the file: write the same line again
                self._write_line(line)
            else:  # pragma: no cover
                raise CasketError("index file keeps being folded away while appending")
            self.last_origin = (self._wid, self._lines)
        for h, size in blobs:
            if not self.store.has_blob(h, size):
                if republish is None:
                    raise CasketError(f"blob {h} referenced by the entry just written is missing and cannot be republished")
                republish(h, size)
        return ts

    def append_parts(self, head: bytes, tail: bytes, blobs: tp.Sequence[tp.Sequence[tp.Any]],
                     republish: tp.Optional[tp.Callable[[str, int], None]], after: tp.Optional[int]) -> int:
        """:meth:`append` of the line ``head + ts + tail`` (the write fast path): under group commit the
        stamp and the batch in one call, with the same checks; otherwise :meth:`append`."""
        if not self._group:
            return self.append(lambda ts: b"%s%d%s" % (head, ts, tail), blobs, republish, after)
        with self._lock:
            if self.closed:
                raise CasketError("index writer is closed")
            if self._timer_error is not None:
                self._raise_timer_error()
            floor = self._last_ts
            if after is not None and after > floor:
                floor = after
            if floor >= _I64_END - 1:
                return self.next_ts(after)  # raises, naming the ts
            ts = time.time_ns()
            if ts <= floor:
                ts = floor + 1
            self._last_ts = ts
            line = b"%s%d%s" % (head, ts, tail)
            packs = self._packs
            if self._fd is None or self._pid != _PID[0] or packs is None or packs.pid != _PID[0]:
                self._batch(line, blobs, republish)  # the first line, or one in a forked child
                return ts
            pending = self._pending
            pending.append((line, blobs, republish))
            added = len(line)
            if republish is not None:
                for _, size in blobs:
                    added += size
            self._pending_bytes += added
            self.last_origin = (self._wid, self._taken + len(pending))
            if len(pending) >= GROUP_COUNT or self._pending_bytes >= GROUP_BYTES:
                self._commit_behind()
            elif self._timer is None:
                self._timer = timers.after(GROUP_SECONDS, self._commit_on_timer)
            return ts

    # ------------------------------------------------------------------ group commit

    def _batch(self, line: bytes, blobs: tp.Sequence[tp.Sequence[tp.Any]],
               republish: tp.Optional[tp.Callable[[str, int], None]]) -> None:
        """Keeps the line for the batch, committed once it holds GROUP_COUNT lines or GROUP_BYTES bytes of
        lines, GROUP_SECONDS after its first line (a timer), at :meth:`commit` and at :meth:`close`."""
        if self._pid != _PID[0]:  # a forked child: the batch is its parent's to commit
            self._pending, self._pending_bytes, self._timer = [], 0, None
        if self._fd is None or self._pid != _PID[0]:
            self._open_new()  # the writer id, for the origin the line will have
        self._pending.append((line, blobs, republish))
        # the payloads a line keeps for republishing (FORMAT 5.5 step 4) count: two batches bound the memory
        self._pending_bytes += len(line)
        if republish is not None:
            for _, size in blobs:
                self._pending_bytes += size
        if self._packs is None or self._packs.pid != _PID[0]:  # the session's, once it has one
            self._packs = self.store.session_pack_writer() or self._packs  # the timer thread has no session
        self.last_origin = (self._wid, self._taken + len(self._pending))
        if len(self._pending) >= GROUP_COUNT or self._pending_bytes >= GROUP_BYTES:
            self._commit_behind()
        elif self._timer is None:
            self._timer = timers.after(GROUP_SECONDS, self._commit_on_timer)

    def _io_lock(self) -> threading.Lock:
        if self._io_pid != _PID[0]:  # a forked child: a thread of its parent may have held the lock
            self._io, self._io_pid = threading.Lock(), _PID[0]
        return self._io

    def _commit_behind(self) -> None:
        """A full batch is written by a thread while the session fills the next one (its flushes no longer
        stop the writes). One batch is written at a time: a session that fills another first waits for it,
        so at most two batches are in memory, and a crash loses at most those two."""
        batch = self._take()
        io = self._io_lock()
        io.acquire()
        try:
            _spawn(self._write_behind, *batch, io)
        except BaseException:
            io.release()
            raise

    def _write_behind(self, batch: list, own: tp.Mapping[str, tp.Any], io: threading.Lock) -> None:
        try:
            self._write_batch(batch, own)
        except BaseException as e:  # raised to the writer at its next append, commit or close
            self._timer_error = e
        finally:
            io.release()

    def _commit_on_timer(self) -> None:
        with self._lock:
            if self._pid != _PID[0]:
                return
            self._timer = None
            batch, own = self._take()
            if not batch:
                return
            io = self._io_lock()
            io.acquire()
        self._write_behind(batch, own, io)  # without the writer's lock: the session appends meanwhile

    def _raise_timer_error(self) -> None:
        error, self._timer_error = self._timer_error, None
        if error is not None:
            raise CasketError(f"the group commit of index file {self._path} failed: {error}") from error

    def commit(self) -> None:
        """Writes the batch now (``CacheDict.flush()``): the packs and blob files first, then every line in
        one write and one fdatasync. When it returns, every key set before it survives a crash."""
        with self._lock:
            self._raise_timer_error()
            self._commit()

    def _commit(self, seal: tp.Optional[bytes] = None) -> None:
        """Commits the batch, after any batch being written; ``seal`` (a seal line) ends the same write,
        flushed with it, and then the session's pack is sealed by a thread meanwhile (the seal flushes the
        pack itself before it publishes the index: its flushes overlap those of the last batches)."""
        batch, own = self._take()
        packs = self._packs if self._packs is not None and self._packs.pid == _PID[0] else None
        sealing = _Sealing(packs) if seal is not None and packs is not None else None
        try:
            with self._io_lock():
                self._raise_timer_error()  # a batch written behind failed: its lines are not on disk
                self._write_batch(batch, own, seal)
        except BaseException:
            if sealing is not None:
                sealing.join(quiet=True)  # the batch's error is the one to raise
            raise
        if sealing is not None:
            sealing.join()

    def _take(self) -> tuple[list, tp.Mapping[str, tp.Any]]:
        """The batch, and the records of the session's open pack, which the batch's step 4 needs no look
        for (the mapping stays with the batch when the pack is sealed meanwhile)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        self._taken += len(batch)
        packs = self._packs
        if packs is None or packs.pid != _PID[0]:
            return batch, {}
        return batch, packs.open_records()

    def _write_batch(self, batch: list, own: tp.Mapping[str, tp.Any], seal: tp.Optional[bytes] = None) -> None:
        """Writes a batch taken from the session (the caller holds the io lock): the packs flushed, then the
        lines in one write and one flush, then steps 3 and 4 of FORMAT 5.5 (a blob in ``own``, the
        session's pack's records, needs no look: no one else removes them)."""
        if not batch:
            if seal is not None:
                # alone, under group commit, not flushed: a seal line a crash takes leaves an unsealed file
                # of a dead writer, which readers and compaction handle anyway
                self._write_line(seal, flush=not self._group)
            return
        packs = self._packs
        if packs is not None and packs.pid == _PID[0]:
            packs.sync()  # the packed bytes of the batch, before any of its lines
        data = b"".join([line for line, _, _ in batch] + ([seal] if seal is not None else []))
        try:
            self._write_line(data, len(batch))
        except CasketError:
            self._write_line(data, len(batch))  # once more, in a new file (FORMAT 5.5 step 2)
        for _ in range(10):
            if not self._folded():
                break
            self._open_new()
            self._write_line(data, len(batch))
        else:  # pragma: no cover
            raise CasketError("index file keeps being folded away while appending")
        if self._dir_unsynced:  # the file's name, made by this session, is durable before its lines count
            _fsync_dir(self.store.index_dir)
            self._dir_unsynced = False
        holds = packs.holds if packs is not None and packs.pid == _PID[0] else None
        for _, blobs, republish in batch:
            for h, size in blobs:
                if h in own or holds is not None and holds(h):
                    continue  # no system call (PackWriter.holds: no one else removes them)
                if not self.store.has_blob(h, size):
                    if republish is None:
                        raise CasketError(
                            f"blob {h} referenced by an entry just written is missing and cannot be republished")
                    republish(h, size)

    def close(self) -> None:
        """Commit the batch, append a seal line (if a file was opened) and close."""
        with self._lock:
            if self.closed:
                return
            mine = self._pid == _PID[0]
            if mine:
                self._raise_timer_error()
            self.closed = True
            if mine and (self._fd is not None or self._pending):
                try:
                    # the last batch and the seal line: one write, one flush
                    self._commit(seal_line(min(max(time.time_ns(), self._last_ts + 1), _I64_END - 1)))
                finally:
                    self._drop_fd()
            else:
                self._fd = None

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc: tp.Any) -> None:
        self.close()


class _Sealing:
    """A session's pack sealed by a thread (FORMAT 3.7: flushed, its index encoded and published) while the
    last batches' lines are written and flushed. ``join`` raises the seal's error."""

    def __init__(self, packs: tp.Any) -> None:
        self._error: tp.Optional[BaseException] = None
        self._packs = packs
        self._done = _spawn(self._run)

    def _run(self) -> None:
        try:
            self._packs.seal()
        except BaseException as e:  # raised by join, in the session's thread
            self._error = e

    def join(self, quiet: bool = False) -> None:
        self._done.acquire()
        self._done.release()
        if self._error is not None and not quiet:
            raise self._error


# --------------------------------------------------------------------------- reader


@dataclasses.dataclass(**({"slots": True} if sys.version_info >= (3, 10) else {}))
class Entry:
    key: str
    ts: int
    writer: str  # writer id of origin
    line: int  # line number of origin
    deleted: bool
    value: tp.Any = None
    blobs: tp.Optional[list] = None
    file: str = ""  # index file name the line was read from (informative)

    @property
    def order(self) -> tuple[int, bytes, int]:
        return (self.ts, self.writer.encode("utf-8", "surrogateescape"), self.line)


@dataclasses.dataclass
class _FileState:
    name: str
    dev: int
    ino: int
    offset: int = 0  # bytes consumed (complete lines only)
    lines: int = 0  # complete lines consumed
    sealed: bool = False


class _Malformed(Exception):
    pass


def _no_constants(name: str) -> tp.Any:
    raise _Malformed(f"non-JSON constant {name}")


def _is_int(x: tp.Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_int64(x: tp.Any) -> bool:
    """An integer that fits a signed 64-bit field (what every implementation can represent)."""
    return _is_int(x) and -(1 << 63) <= x < (1 << 63)


def parse_line(raw: bytes) -> tp.Optional[dict]:
    """Parse and validate one line (without ``\\n``). Returns None for a blank line or a seal line
    (as ``{"sealed": True}``), the object for an entry; raises _Malformed with a reason."""
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_constant=_no_constants)
    except _Malformed:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _Malformed(f"not valid JSON ({e})") from None
    _check_unicode(text, obj)
    return validate(obj)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_unicode(text: str, obj: tp.Any) -> None:
    """FORMAT 5.3: a string that is not Unicode text (a lone surrogate escape such as ``\\ud800``, which
    ``json`` accepts) is no UTF-8 byte string, so the line is malformed, as in the Swift reader."""
    if _SURROGATE_ESCAPE.search(text) is None:
        return
    try:
        _dumps(obj)
    except UnicodeEncodeError:
        raise _Malformed("a string holds a lone surrogate (not Unicode text)") from None


_DECODER = json.JSONDecoder(parse_constant=_no_constants)
_SCAN = _DECODER.scan_once  # the C scanner: parses one value at a position of a longer string
_LINE_END_OK = frozenset(" \t\r")


_I64_MIN, _I64_END = -(1 << 63), 1 << 63
_HASH_FULLMATCH = re.compile(r"[0-9a-f]{32}").fullmatch
_JSON_UINT = r"(?:0|[1-9][0-9]{0,18})"  # at most 19 digits: int() never meets a long digit string
# a set line of one MemmapArray node and its blob, in the bytes writers give it (FORMAT 5.2): a key without
# escapes or control characters, JSON integers, the blob and size of "blobs" those of the node; trailing
# blanks as the scanner path allows them
_ARRAY_LINE = re.compile(
    r'^\{"key":"([^"\\\x00-\x1f]+)","ts":(0|-?[1-9][0-9]{0,18}),"value":\{"#type":"MemmapArray","blob":"([0-9a-f]{32})",'
    rf'"size":({_JSON_UINT}),"dtype":"([0-9A-Za-z<>|=]+)","shape":\[((?:{_JSON_UINT})(?:,{_JSON_UINT})*)?\]\}},'
    r'"blobs":\[\["\3",\4\]\]\}[ \t\r]*$', re.M).finditer
# the block pass (IndexReader._lines): the same lines, each found after the newline before it (the block is
# given with one in front), so a match is always one whole line and a block every line of which matched has
# as many matches as lines. Its integers are those that fit int64 by their digits alone (at most 18, or 19
# with a first digit of 1 to 8: every ts of this century), so no line needs a check after the match; a ts
# or size of 19 digits from 9 on, or of more digits, goes through the per-line path for its verdict. A ts
# of 19 digits is tried first: after the 18 digits of the shorter form it would backtrack digit by digit.
_I64_DIGITS = r"(?:-?[1-8][0-9]{18}|0|-?[1-9][0-9]{0,17})"
_U63_DIGITS = r"(?:0|[1-9][0-9]{0,17}|[1-8][0-9]{18})"
_ARRAY_ROWS = re.compile(
    rf'\n\{{"key":"([^"\\\x00-\x1f]+)","ts":({_I64_DIGITS}),"value":\{{"#type":"MemmapArray","blob":"([0-9a-f]{{32}})",'
    rf'"size":({_U63_DIGITS}),"dtype":"([0-9A-Za-z<>|=]+)","shape":\[((?:{_JSON_UINT})(?:,{_JSON_UINT})*)?\]\}},'
    r'"blobs":\[\["\3",\4\]\]\}[ \t\r]*(?=\n)').findall


class _Rows:
    """The array lines of one block the block pass took: each as its matched fields (key, ts, blob, size,
    dtype, shape, as text), with the writer id and file they came from and the line number of the first.
    A winner slot ``(rows, i)`` holds a key's line in 2 references instead of an Entry, its value tree
    and its blobs list (made only when asked for)."""

    __slots__ = ("rows", "wid", "name", "first")

    def __init__(self, rows: list[tuple[str, ...]], wid: str, name: str, first: int) -> None:
        self.rows, self.wid, self.name, self.first = rows, wid, name, first


def _row_entry(slot: tuple[_Rows, int]) -> Entry:
    """The Entry of a compact slot: the one the per-line path makes for the same line."""
    block, i = slot
    key, ts, h, size_s, dtype, shape = block.rows[i]
    size = int(size_s)
    return Entry(key, int(ts), block.wid, block.first + i, False,
                 {"#type": "MemmapArray", "blob": h, "size": size, "dtype": dtype,
                  "shape": [int(x) for x in shape.split(",")] if shape else []},
                 [[h, size]], block.name)


def _order(slot: tp.Union[Entry, tuple[_Rows, int]]) -> tuple[int, bytes, int]:
    """The winner order (ts, writer id as bytes, line) of a slot, an Entry or a compact one."""
    if type(slot) is tuple:
        block, i = slot
        return (int(block.rows[i][1]), block.wid.encode("utf-8", "surrogateescape"), block.first + i)
    return slot.order  # type: ignore[union-attr]


def validate(obj: tp.Any) -> dict:
    """Validate a parsed line (FORMAT 5.3); returns the object or ``{"sealed": True}``.

    Parsed JSON integers are exactly ``int`` (``bool`` is its own type), hence the ``type() is``
    tests; they are on the hot path of loading large indexes."""
    if type(obj) is not dict:
        raise _Malformed("not a JSON object")
    get = obj.get
    if get("sealed") is True:
        return {"sealed": True}
    key = get("key")
    if type(key) is not str or not key:
        raise _Malformed("missing or invalid 'key'")
    ts = get("ts")
    if type(ts) is not int or not _I64_MIN <= ts < _I64_END:
        raise _Malformed("missing or invalid 'ts' (an integer is required)")
    # origin (w, n) applies only when both are present and well typed (as the Swift reader does)
    if "w" in obj or "n" in obj:
        n = get("n")
        if not (type(get("w")) is str and type(n) is int and _I64_MIN <= n < _I64_END):
            obj.pop("w", None)
            obj.pop("n", None)
    if get("deleted") is True:
        return obj
    if "value" not in obj or "blobs" not in obj:
        raise _Malformed("neither 'value'+'blobs' nor '\"deleted\":true'")
    if type(obj["value"]) is not dict:
        raise _Malformed("'value' is not an object")
    blobs = obj["blobs"]
    if type(blobs) is not list:
        raise _Malformed("'blobs' is not an array")
    for b in blobs:
        if type(b) is not list or len(b) != 2:
            raise _Malformed("a 'blobs' item is not a [hash, size] pair")
        h, size = b
        if type(h) is not str or _HASH_FULLMATCH(h) is None:
            raise _Malformed(f"bad blob hash {h!r}")
        if type(size) is not int or not 0 <= size < _I64_END:
            raise _Malformed(f"bad blob size {size!r}")
    return obj


def _plain_set(obj: dict) -> bool:
    """Whether a parsed object of four fields is a valid set line (``key``, ``ts``, ``value``, ``blobs``) by
    the rules of :func:`validate`; False sends it to validate() for the verdict."""
    key, ts, value, blobs = obj.get("key"), obj.get("ts"), obj.get("value"), obj.get("blobs")
    if not (type(key) is str and key and type(ts) is int and _I64_MIN <= ts < _I64_END and type(value) is dict
            and type(blobs) is list):
        return False
    for b in blobs:
        if type(b) is not list or len(b) != 2:
            return False
        h, size = b
        if type(h) is not str or _HASH_FULLMATCH(h) is None or type(size) is not int or not 0 <= size < _I64_END:
            return False
    return True


class IndexReader:
    """Incremental reader of every index file, resolving winners by FORMAT 5.4.

    ``refresh()`` lists ``index/``, reads only the bytes appended to each file since the previous
    refresh (a file is identified by device+inode; a rename that keeps the writer id, such as
    ``x.jsonl`` -> ``x.jsonl.folding``, keeps its state). If a file vanished, shrank or was
    replaced, its contributions cannot be subtracted, so the whole index is re-read.
    """

    def __init__(self, store: Store, warn: bool = True) -> None:
        self.store = store
        self.warn = warn
        self._files: dict[str, _FileState] = {}
        # key -> its winner: an Entry, or the compact slot (_Rows, i) of an array line the block pass took
        self._best: dict[str, tp.Union[Entry, tuple[_Rows, int]]] = {}
        # the raw slot of a key (Entry, compact slot, or None), for the read fast path (CacheDict.__getitem__)
        self.slot = self._best.get
        self.problems: list[str] = []  # "file:line: reason" of every malformed line seen
        self.debris: list[str] = []  # entries of index/ that are not index files, as last listed
        self._warned_debris: set[str] = set()
        self.bytes_read = 0  # total index bytes read (for tests / diagnostics)
        self.full_reads = 0  # number of full re-reads
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- public

    def refresh(self) -> None:
        with self._lock:
            self._read_new()

    def latest_ts(self, key: str) -> tp.Optional[int]:
        """The ts of ``key``'s winner in this view (tombstones included): a write must be later (FORMAT 5.4)."""
        entry = self._best.get(key)
        if type(entry) is tuple:
            block, i = entry
            return int(block.rows[i][1])
        return None if entry is None else entry.ts

    def _read_new(self) -> None:
        with self._lock:
            listing = self._list()
            if listing is None:
                return
            if self._needs_full_read(listing):
                self._files.clear()
                self._best.clear()
                self.full_reads += 1
            # parsed lines are kept (winners): cyclic GC passes over them while loading a large
            # index cost ~40 % of the load and find nothing, so GC is paused meanwhile
            paused = gc.isenabled()
            if paused:
                gc.disable()
            try:
                for name in sorted(listing):
                    dev, ino, size = listing[name]
                    state = self._files.get(name)
                    if state is None:
                        state = _FileState(name, dev, ino)
                        self._files[name] = state
                    if size > state.offset:
                        self._read_file(state)
            finally:
                if paused:
                    gc.enable()

    def get(self, key: str) -> tp.Optional[Entry]:
        """The winning entry of ``key`` (None if never seen or deleted)."""
        e = self._best.get(key)
        if type(e) is tuple:
            return self._entry(key, e)
        return None if e is None or e.deleted else e

    def has(self, key: str) -> bool:
        """Whether ``key`` has a live winner: :meth:`get` without making the entry of a compact slot (which
        would take the read fast path's slot away: ``key in cd`` comes before ``cd[key]`` in exca's callers)."""
        e = self._best.get(key)
        return e is not None and (type(e) is tuple or not e.deleted)

    def winner(self, key: str) -> tp.Optional[Entry]:
        """The winning line of ``key``, tombstones included."""
        e = self._best.get(key)
        return self._entry(key, e) if type(e) is tuple else e

    def keys(self) -> list[str]:
        return [k for k, e in self._best.items() if type(e) is tuple or not e.deleted]

    def live(self) -> tp.Iterator[Entry]:
        return (self._entry(k, e) if type(e) is tuple else e for k, e in list(self._best.items())
                if type(e) is tuple or not e.deleted)

    def _entry(self, key: str, slot: tuple[_Rows, int]) -> Entry:
        """The :class:`Entry` of a compact winner slot, kept in its place (unless a refresh holds the lock:
        a read never waits for one, and a slot the refresh replaced meanwhile is not put back)."""
        entry = _row_entry(slot)
        if self._lock.acquire(blocking=False):
            try:
                if self._best.get(key) is slot:
                    self._best[key] = entry
            finally:
                self._lock.release()
        return entry

    def offsets(self) -> dict[str, int]:
        """Bytes consumed per index file name."""
        return {n: s.offset for n, s in self._files.items()}

    def observe(self, entry: Entry) -> None:
        """Merge an entry this process just wrote (so it is visible before the next refresh)."""
        with self._lock:
            self._merge(entry)

    # ---------------------------------------------------------------- internals

    def _list(self) -> tp.Optional[dict[str, tuple[int, int, int]]]:
        files, debris = list_index_dir(self.store.index_dir)
        self.debris = [f"'{path}' is {kind}: not an index file, skipped" for path, kind in debris]
        for msg in self.debris:
            if self.warn and msg not in self._warned_debris:  # once per reader, not on every refresh
                warnings.warn(msg, IndexDebrisWarning, stacklevel=4)
            self._warned_debris.add(msg)
        return {name: (st.st_dev, st.st_ino, st.st_size) for name, st in files.items()}

    def _needs_full_read(self, listing: dict[str, tuple[int, int, int]]) -> bool:
        by_inode = {(dev, ino): name for name, (dev, ino, _s) in listing.items()}
        for name, state in list(self._files.items()):
            cur = listing.get(name)
            if cur is not None:
                if (cur[0], cur[1]) != (state.dev, state.ino) or cur[2] < state.offset:
                    return True  # replaced or truncated
                continue
            # gone: a rename keeping the writer id (x.jsonl -> x.jsonl.folding) keeps its state
            new_name = by_inode.get((state.dev, state.ino))
            if (
                new_name is not None
                and new_name not in self._files
                and writer_id_of(new_name) == writer_id_of(name)
                and listing[new_name][2] >= state.offset
            ):
                del self._files[name]
                state.name = new_name
                self._files[new_name] = state
                continue
            return True
        return False

    def _report(self, name: str, lineno: int, reason: str) -> None:
        msg = f"{self.store.index_dir / name}:{lineno}: malformed index line skipped: {reason}"
        self.problems.append(msg)
        if self.warn:
            warnings.warn(msg, MalformedLineWarning, stacklevel=4)

    def _read_file(self, state: _FileState) -> None:
        """Read complete lines appended since ``state.offset``; an unterminated tail stays unread."""
        path = self.store.index_dir / state.name
        fd = open_index_file(path)
        if fd is None:
            return  # vanished, or replaced by something that is not an index file
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if (st.st_dev, st.st_ino) != (state.dev, state.ino):
                return  # replaced between listing and opening: the next refresh re-reads all
            f.seek(state.offset)
            wid = writer_id_of(state.name)
            pending = b""  # unconsumed bytes; they start exactly at state.offset
            while True:
                chunk = f.read(READ_CHUNK)
                if not chunk:
                    break
                self.bytes_read += len(chunk)
                data = pending + chunk if pending else chunk
                end = data.rfind(b"\n") + 1  # complete lines only
                if end:
                    self._lines(state, wid, data, end)
                state.offset += end
                pending = data[end:]

    def _lines(self, state: _FileState, wid: str, data: bytes, end: int) -> None:
        """Parse the complete lines ``data[:end]``.

        The block is decoded once. A block of array lines (and a seal line last) is taken by one
        ``findall`` of :data:`_ARRAY_ROWS`, which admits only valid such lines, used only when it matched
        every line. Otherwise each array line is taken from its match of :data:`_ARRAY_LINE`, and any
        other line by the C scanner run at its start (parsing each line as its own string is ~5x slower).
        A line that does not start with ``{``, does not end right after its object, or fails to parse goes
        through :func:`parse_line`, which gives the exact verdict and reason."""
        try:
            text = data[:end].decode("utf-8")
        except UnicodeDecodeError:
            start = 0
            while start < end:
                nl = data.find(b"\n", start)
                state.lines += 1
                self._line(state, wid, data[start:nl], state.lines)
                start = nl + 1
            return
        # lone surrogates come only from \\uD8xx-\\uDFxx escapes: look per line only if the block has one
        escapes = _SURROGATE_ESCAPE.search(text) is not None
        best, name = self._best, state.name
        start, n = 0, len(text)
        if not escapes:
            # the block pass: one findall over the block; when it matched every line, each array line's
            # winner slot is filled without a Python loop (a seal line last goes through the scanner)
            last = text.rfind("\n", 0, n - 1) + 1
            body = last if last and not text.startswith('{"key":', last) else n
            rows = _ARRAY_ROWS("\n" + text[:body])
            if rows and len(rows) == text.count("\n", 0, body):
                self._array_rows(state, wid, rows)
                if body < n:
                    self._scan_lines(state, wid, text, body, n, escapes)
                return
            # a block of other lines too: the line of a packed or loose array, {key, ts, value: MemmapArray node,
            # blobs: its one blob}, as writers render it, is taken field by field from one match, without the
            # JSON scanner and the checks (the pattern admits only valid such lines); any other line goes
            # through the general path (all of them when the block pass matched none)
            for m in (_ARRAY_LINE(text) if rows else ()):
                if m.start() > start:
                    self._scan_lines(state, wid, text, start, m.start(), escapes)
                state.lines += 1
                start = m.end() + 1
                key, ts, h, size, dtype, shape = m.groups()
                ts, size = int(ts), int(size)
                if not (_I64_MIN <= ts < _I64_END and size < _I64_END):
                    state.lines -= 1  # outside int64: the general path gives the verdict
                    self._scan_lines(state, wid, text, m.start(), start, escapes)
                    continue
                entry = Entry(key, ts, wid, state.lines, False,
                              {"#type": "MemmapArray", "blob": h, "size": size, "dtype": dtype,
                               "shape": [int(x) for x in shape.split(",")] if shape else []},
                              [[h, size]], name)
                cur = best.get(key)
                if cur is None or entry.order > _order(cur):
                    best[key] = entry
        if start < n:
            self._scan_lines(state, wid, text, start, n, escapes)

    def _array_rows(self, state: _FileState, wid: str, rows: list[tuple[str, ...]]) -> None:
        """The winner slots of a block whose every line the block pass matched: each key's slot is the
        compact ``(block, i)`` (:class:`_Rows`), made into an :class:`Entry` when asked for. A block of
        keys seen nowhere else (a new reader of distinct keys) fills them in one ``dict.update``; any key
        already seen, or seen twice in the block, takes the winner rule line by line."""
        block = _Rows(rows, wid, state.name, state.lines + 1)
        state.lines += len(rows)
        best = self._best
        keys = [r[0] for r in rows]
        if len(set(keys)) == len(keys) and best.keys().isdisjoint(keys):
            best.update(zip(keys, zip(itertools.repeat(block), range(len(rows)))))
            return
        wid_b, first = wid.encode("utf-8", "surrogateescape"), block.first
        for i, key in enumerate(keys):
            cur = best.get(key)
            if cur is None or (int(rows[i][1]), wid_b, first + i) > _order(cur):
                best[key] = (block, i)

    def _scan_lines(self, state: _FileState, wid: str, text: str, start: int, n: int, escapes: bool) -> None:
        """The whole lines ``text[start:n]``, each parsed by the C scanner."""
        scan, find, ok = _SCAN, text.find, _LINE_END_OK
        best, name = self._best, state.name
        while start < n:
            nl = find("\n", start)
            state.lines += 1
            obj = None
            if text.startswith("{", start):
                try:
                    obj, stop = scan(text, start)
                except Exception:  # noqa: BLE001 - the slow path reports the reason
                    obj = None
                else:
                    if stop > nl or (stop < nl and not all(c in ok for c in text[stop:nl])):
                        obj = None
            if obj is None:
                self._line(state, wid, text[start:nl].encode("utf-8"), state.lines)
            elif not escapes and len(obj) == 4 and _plain_set(obj):
                # the common line, {key, ts, value, blobs}, checked as validate() checks it, without its
                # look for every other field; its entry made here (most of a large index's load)
                key = obj["key"]
                entry = Entry(key, obj["ts"], wid, state.lines, False, obj["value"], obj["blobs"], name)
                cur = best.get(key)
                if cur is None or entry.order > _order(cur):
                    best[key] = entry
            else:
                try:
                    if escapes:
                        _check_unicode(text[start:nl], obj)
                    self._add(state, wid, validate(obj), state.lines)
                except _Malformed as e:
                    self._report(state.name, state.lines, str(e))
            start = nl + 1

    def _line(self, state: _FileState, wid: str, raw: bytes, lineno: int) -> None:
        try:
            obj = parse_line(raw)
        except _Malformed as e:
            self._report(state.name, lineno, str(e))
            return
        if obj is None:
            return
        self._add(state, wid, obj, lineno)

    def _add(self, state: _FileState, wid: str, obj: dict, lineno: int) -> None:
        if len(obj) == 1:  # validate() gives a seal line as {"sealed": True}
            state.sealed = True
            return
        key = obj["key"]
        if "w" in obj:
            wid, lineno = obj["w"], obj["n"]
        if obj.get("deleted") is True:
            entry = Entry(key, obj["ts"], wid, lineno, True, None, None, state.name)
        else:
            entry = Entry(key, obj["ts"], wid, lineno, False, obj["value"], obj["blobs"], state.name)
        cur = self._best.get(key)
        if cur is None or entry.order > _order(cur):
            self._best[key] = entry

    def _merge(self, entry: Entry) -> None:
        cur = self._best.get(entry.key)
        if cur is None or entry.order > _order(cur):
            self._best[entry.key] = entry
