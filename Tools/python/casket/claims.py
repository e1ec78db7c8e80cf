"""Compute-once claims: the protocol of docs/CLAIMS.md, shared with the Swift implementation.

A claim on key K is the file ``claims/<xxh3-128(K)>.<generation>``, created by writing a unique file and
``os.link``-ing it into place (atomic on NFS), whose mtime is the holder's heartbeat. A claim whose
heartbeat is older than the TTL, measured against the file system's now (the mtime of a file just
written), is stale and is taken over by creating the next generation.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import threading
import time
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import xxhash

from .store import CasketError, Store, sanitized_host


class ClaimTimeout(CasketError):
    """Waiting for other workers to compute some keys took longer than the timeout."""


@dataclass
class ClaimRecord:
    """What a claim file says about its holder."""

    key: str
    host: str
    pid: int
    token: str
    started: int
    generation: int
    heartbeat: int  # the claim file's mtime, nanoseconds

    def encoded(self) -> bytes:
        fields = {"key": self.key, "host": self.host, "pid": self.pid, "token": self.token,
                  "started": self.started, "generation": self.generation}
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class HeldClaim:
    """A claim this process holds, kept alive by a heartbeat thread until :meth:`release`."""

    def __init__(self, board: "ClaimBoard", key: str, generation: int, path: Path, token: str) -> None:
        self.board, self.key, self.generation, self.path, self.token = board, key, generation, path, token
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="casket-claim-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        interval = max(self.board.ttl / 4, 0.05)
        while not self._stop.wait(interval):
            if self.board.path(self.key, self.generation + 1).exists():
                self.lost = True  # taken over: another worker may compute the key too
            try:
                os.utime(self.path)
            except OSError:
                self.lost = True

    def release(self) -> None:
        """Removes the claim and the stale generations below it; stops the heartbeat. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        record = self.board.read(self.path)
        if record is not None and record.token == self.token:
            _unlink(self.path)
        if self.generation == 0:
            return
        now = self.board.fs_now()
        for lower in range(self.generation - 1, -1, -1):
            path = self.board.path(self.key, lower)
            record = self.board.read(path)
            if record is not None and not self.board.is_live(record, now):
                _unlink(path)

    def __enter__(self) -> "HeldClaim":
        return self

    def __exit__(self, *exc: tp.Any) -> None:
        self.release()


class ClaimBoard:
    """Claims in a store's ``claims/`` folder; ``ttl`` in seconds (default 60)."""

    def __init__(self, store: Store, ttl: float = 60.0) -> None:
        self.store = store
        self.ttl = ttl
        self.directory = Path(store.root) / "claims"

    def path(self, key: str, generation: int) -> Path:
        return self.directory / f"{xxhash.xxh3_128_hexdigest(key.encode('utf-8'))}.{generation}"

    def fs_now(self) -> int:
        """The file system's now: the mtime of a probe file written in the store's tmp/."""
        probe = Path(self.store.root) / "tmp" / f"{sanitized_host()}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
            _unlink(probe)

    def is_live(self, record: ClaimRecord, now: int) -> bool:
        return now - record.heartbeat < int(self.ttl * 1e9)

    def read(self, path: Path) -> tp.Optional[ClaimRecord]:
        try:
            mtime = os.stat(path).st_mtime_ns
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise CasketError(f"claim file '{path}' is not a claim record: {e}") from None
        return ClaimRecord(key=data["key"], host=data["host"], pid=int(data["pid"]), token=data["token"],
                           started=int(data["started"]), generation=int(data["generation"]), heartbeat=mtime)

    def try_claim(self, key: str) -> tp.Union[HeldClaim, ClaimRecord]:
        """Claims ``key`` once, taking over a stale claim. Returns the held claim, or the live holder's
        record. An I/O error raises: it is never taken for a claim."""
        self.directory.mkdir(exist_ok=True)
        generation = 0
        while True:
            token = secrets.token_hex(8)
            target = self.path(key, generation)
            record = ClaimRecord(key, sanitized_host(), os.getpid(), token, time.time_ns(), generation, 0)
            unique = Path(f"{target}.{sanitized_host()}.{os.getpid()}.{token}.tmp")
            fd = os.open(unique, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                os.write(fd, record.encoded())
                if self.store.durability == "fsync":
                    os.fsync(fd)
                now = os.fstat(fd).st_mtime_ns  # the unique file is also the clock probe
                try:
                    os.link(unique, target)
                    ours = True
                except FileExistsError:
                    ours = os.fstat(fd).st_nlink == 2  # a lost NFS reply: the link happened
            finally:
                os.close(fd)
                _unlink(unique)
            if ours:
                if generation > 0:
                    for lower in range(generation):
                        other = self.read(self.path(key, lower))
                        if other is not None and self.is_live(other, now):
                            _unlink(target)  # a lower generation came back to life: back off
                            return other
                return HeldClaim(self, key, generation, target, token)
            existing = self.read(target)
            if existing is None:
                continue  # released meanwhile: try again
            if self.is_live(existing, now):
                return existing
            generation += 1

    def list(self) -> list[tuple[ClaimRecord, float, bool]]:
        """Every claim with its age in seconds (file-system time) and whether it is stale."""
        self.directory.mkdir(exist_ok=True)
        now = self.fs_now()
        out = []
        for path in sorted(self.directory.iterdir()):
            if path.name.endswith(".tmp"):
                continue
            record = self.read(path)
            if record is not None:
                out.append((record, (now - record.heartbeat) / 1e9, not self.is_live(record, now)))
        return out


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
