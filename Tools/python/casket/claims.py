"""Compute-once claims: the protocol of docs/CLAIMS.md and docs/FORMAT.md section 8, shared with Swift.

A claim on key K is the lease (``lease.py``, FORMAT.md section 7) ``claims/<xxh3-128(K)>`` whose record
carries ``"key"``. A stale claim (heartbeat older than the TTL in the file system's time, or a holder of
this host, boot and PID namespace whose pid is gone) is taken over; an empty or unparseable claim file is
judged by its mtime alone. Anything else in ``claims/`` is a stray: listed, never fatal.
"""

from __future__ import annotations

import os
import re
import secrets
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from .lease import Lease, LeaseHolder, _check_positive, _unlink, observe
from .store import CasketError, Store, check_real_dir, sanitized_host

_HASH = re.compile(r"[0-9a-f]{32}")


class ClaimTimeout(CasketError):
    """Waiting for other workers to compute some keys took longer than the timeout."""


@dataclass
class ClaimRecord:
    """A claim file as it was seen: the key it names (None when unreadable) and the lease behind it."""

    path: Path
    key: tp.Optional[str]
    lease: LeaseHolder

    @classmethod
    def of(cls, lease: LeaseHolder) -> "ClaimRecord":
        key = lease.record.fields.get("key") if lease.record is not None else None
        return cls(lease.path, key if isinstance(key, str) else None, lease)

    @property
    def host(self) -> tp.Optional[str]:
        return self.lease.record.host if self.lease.record is not None else None

    @property
    def pid(self) -> tp.Optional[int]:
        return self.lease.record.pid if self.lease.record is not None else None

    @property
    def age(self) -> float:
        """Seconds since the last heartbeat, file-system time."""
        return self.lease.age / 1e9

    @property
    def stale(self) -> bool:
        return self.lease.is_stale


@dataclass
class ClaimSurvey:
    """Everything in ``claims/``: claim files, and strays as ``(path, reason)``."""

    claims: list[ClaimRecord] = field(default_factory=list)
    strays: list[tuple[Path, str]] = field(default_factory=list)


class HeldClaim:
    """A claim this process holds, kept alive by its lease's heartbeat until :meth:`release`."""

    def __init__(self, key: str, lease: Lease) -> None:
        self.key, self.lease = key, lease

    @property
    def lost(self) -> bool:
        """True when another worker took the claim over or its file vanished: the work may be done twice."""
        return self.lease.lost

    @property
    def path(self) -> Path:
        return self.lease.path

    def release(self) -> None:
        """Removes the claim file if it is still this holder's; stops the heartbeat. Idempotent."""
        self.lease.release()

    def __enter__(self) -> "HeldClaim":
        return self

    def __exit__(self, *exc: tp.Any) -> None:
        self.release()


class ClaimBoard:
    """Claims in a store's ``claims/`` folder; ``ttl`` in seconds (default 60, must be positive)."""

    def __init__(self, store: Store, ttl: float = 60.0) -> None:
        _check_positive(ttl, ttl)
        self.store = store
        self.ttl = ttl
        self.heartbeat = max(ttl / 4, 0.05)
        self.directory = Path(store.root) / "claims"

    def path(self, key: str) -> Path:
        return self.directory / xxhash.xxh3_128_hexdigest(key.encode("utf-8"))

    def _ensure_directory(self) -> None:
        """``claims/``, created if missing; a link in its place raises, never followed (FORMAT 1.1)."""
        if not check_real_dir(self.directory):
            self.directory.mkdir(exist_ok=True)
            check_real_dir(self.directory)

    def fs_now(self) -> int:
        """The file system's now: the mtime of a probe file written in the store's tmp/."""
        probe = Path(self.store.root) / "tmp" / f"{sanitized_host()}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            return os.fstat(fd).st_mtime_ns
        finally:
            os.close(fd)
            _unlink(probe)

    def try_claim(self, key: str) -> tp.Union[HeldClaim, ClaimRecord]:
        """Claims ``key`` once, taking over a stale claim. Returns the held claim, or the live holder's
        record. An I/O error raises: it is never taken for a claim."""
        self._ensure_directory()
        got = Lease.acquire(self.path(key), {"key": key}, self.ttl, self.heartbeat, self.store.fsync)
        if isinstance(got, Lease):
            return HeldClaim(key, got)
        return ClaimRecord.of(got)

    def free(self, keys: tp.Iterable[str]) -> list[str]:
        """The keys nobody holds a live claim on (no claim file, or a stale one), without claiming them: a
        waiter's test for a worker that died or gave up. A folder under a claim's name raises."""
        self._ensure_directory()
        now = self.fs_now()
        out = []
        for key in keys:
            holder = observe(self.path(key), now, self.ttl)
            if holder is None or holder.is_stale:
                out.append(key)
        return out

    def survey(self) -> ClaimSurvey:
        """Every claim file (readable or not) and every stray entry with its reason; never fails on one."""
        self._ensure_directory()
        now = self.fs_now()
        out = ClaimSurvey()
        for path in sorted(self.directory.iterdir()):
            name = path.name
            digest = name.split(".", 1)[0]
            if _HASH.fullmatch(digest) and (name.endswith(".tmp") or name == digest + ".takeover"):
                continue  # the unique file behind a link, a takeover in progress: protocol files
            if not _HASH.fullmatch(digest) or name != digest:
                reason = "a folder, not a claim file" if path.is_dir() and not path.is_symlink() else (
                    "not a claim file name (a claim is named by a key's hash)")
                out.strays.append((path, reason))
                continue
            try:
                lease = observe(path, now, self.ttl)
            except (CasketError, OSError) as e:
                out.strays.append((path, str(e)))
                continue
            if lease is not None:
                out.claims.append(ClaimRecord.of(lease))
        out.claims.sort(key=lambda c: (c.key or "", str(c.path)))
        return out

    def list(self) -> list[ClaimRecord]:
        """Every claim file, with its age (file-system time) and whether it is stale."""
        return self.survey().claims
