"""Leases on the shared file system: the protocol of docs/FORMAT.md section 7, the same as Swift's ``Lease``.

A lease is one file created by writing a unique file and ``os.link``-ing it into place (atomic on NFS). It
holds one JSON record (owner token, host, pid, boot id, PID namespace, creation time, and the user's fields);
its mtime is the holder's heartbeat. It is stale when the heartbeat is older than the TTL against the file
system's now, or when its record names this host, this boot and this PID namespace and a pid that does not
exist. An empty or unparseable lease file is judged by its mtime alone. Takeover and release happen under the
exclusive file ``<lease>.takeover``, so a taker never removes a lease it did not judge and a holder never
removes another owner's file.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import json
import os
import secrets
import stat
import threading
import time
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

from .store import CasketError, sanitized_host

_OWN_FIELDS = ("token", "host", "pid", "boot_id", "pid_ns", "created")
_READ_LIMIT = 1 << 16


def _read_boot_id() -> str:
    try:
        return "".join(Path("/proc/sys/kernel/random/boot_id").read_text().split())
    except OSError:
        return ""


def _read_pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


THIS_BOOT = _read_boot_id()
THIS_PID_NAMESPACE = _read_pid_namespace()


def _check_positive(ttl: float, heartbeat: float) -> None:
    if not ttl > 0:
        raise ValueError(f"a lease TTL must be positive, not {ttl}: with {ttl} every live holder would count as stale")
    if not heartbeat > 0:
        raise ValueError(f"a lease heartbeat interval must be positive, not {heartbeat}")


@dataclass
class LeaseRecord:
    """What a lease file says about its holder."""

    token: str
    host: str
    pid: int
    boot_id: str
    pid_ns: str
    created: int  # the holder's clock, nanoseconds; informative only
    fields: dict = field(default_factory=dict)  # the user's fields (a claim's "key")

    @classmethod
    def mine(cls, fields: dict) -> "LeaseRecord":
        return cls(secrets.token_hex(16), sanitized_host(), os.getpid(), THIS_BOOT, THIS_PID_NAMESPACE,
                   time.time_ns(), dict(fields))

    def encoded(self) -> bytes:
        own = {"token": self.token, "host": self.host, "pid": self.pid, "boot_id": self.boot_id,
               "pid_ns": self.pid_ns, "created": self.created}
        merged = {k: v for k, v in self.fields.items() if k not in own}
        merged.update(own)
        return json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> tp.Optional["LeaseRecord"]:
        """The record, or None for anything that is not one (empty, truncated, another format)."""
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(obj, dict):
            return None
        token, host, pid = obj.get("token"), obj.get("host"), obj.get("pid")
        if not isinstance(token, str) or not token or not isinstance(host, str):
            return None
        if not isinstance(pid, int) or isinstance(pid, bool) or not -(2**31) <= pid < 2**31:
            return None
        boot_id, pid_ns, created = obj.get("boot_id", ""), obj.get("pid_ns", ""), obj.get("created", 0)
        return cls(token, host, pid, boot_id if isinstance(boot_id, str) else "",
                   pid_ns if isinstance(pid_ns, str) else "",
                   created if isinstance(created, int) and not isinstance(created, bool) else 0,
                   {k: v for k, v in obj.items() if k not in _OWN_FIELDS})

    def pid_is_comparable(self) -> bool:
        """Whether this record's pid can be looked up from here: same host, boot and PID namespace."""
        return (self.host == sanitized_host() and bool(self.boot_id) and self.boot_id == THIS_BOOT
                and bool(self.pid_ns) and self.pid_ns == THIS_PID_NAMESPACE)

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass
class LeaseHolder:
    """A lease file as it was seen, judged against the file system's now."""

    path: Path
    record: tp.Optional[LeaseRecord]  # None: empty, truncated or not a record
    heartbeat: int  # the file's mtime, nanoseconds
    age: int  # nanoseconds since the heartbeat, file-system time
    staleness: tp.Optional[str]  # None while live, else "heartbeat" or "dead_process"
    data: tp.Optional[bytes] = None

    @property
    def is_stale(self) -> bool:
        return self.staleness is not None

    def unchanged(self, other: "LeaseHolder") -> bool:
        return self.data == other.data and self.heartbeat == other.heartbeat

    def __str__(self) -> str:
        return str(self.record) if self.record is not None else "an unreadable lease file"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, another user's
    return True


def _read_regular(path: Path) -> tp.Optional[bytes]:
    """The file's bytes; None for a symlink, FIFO, device: never opened through. FileNotFoundError if gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, total = [], 0
        while total < _READ_LIMIT:
            chunk = os.read(fd, _READ_LIMIT - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def observe(path: Path, now: int, ttl: float) -> tp.Optional[LeaseHolder]:
    """Looks at a lease file; None when there is none. A directory under its name raises (it cannot be
    judged or removed, so it is reported, never waited on)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        raise CasketError(f"'{path}' is a directory where a lease file belongs; nothing can take it over: remove it")
    data = None
    if stat.S_ISREG(st.st_mode):
        try:
            data = _read_regular(path)
        except FileNotFoundError:
            return None
    record = LeaseRecord.parse(data) if data is not None else None
    age = now - st.st_mtime_ns
    staleness = None
    if age > int(ttl * 1e9):
        staleness = "heartbeat"
    elif record is not None and record.pid_is_comparable() and record.pid > 0 and not _process_exists(record.pid):
        staleness = "dead_process"
    return LeaseHolder(Path(path), record, st.st_mtime_ns, age, staleness, data)


def create_by_link(path: Path, data: bytes, sync: bool) -> tuple[bool, int]:
    """Creates ``path`` holding ``data`` if it does not exist, atomically for every NFS client (unique
    file, link, link count). Returns whether this call created it and the file system's now."""
    unique = Path(f"{path}.{sanitized_host()}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(unique, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
        now = os.fstat(fd).st_mtime_ns
        try:
            os.link(unique, path)
        except FileExistsError:
            pass
        except OSError:
            if os.fstat(fd).st_nlink != 2:
                raise
        return os.fstat(fd).st_nlink == 2, now  # 2: the link happened, even if its reply was lost
    finally:
        os.close(fd)
        _unlink(unique)


def _holds(path: Path, token: str) -> bool:
    try:
        data = _read_regular(path)
    except OSError:
        return False
    record = LeaseRecord.parse(data) if data is not None else None
    return record is not None and record.token == token


def with_takeover_file(path: Path, record: LeaseRecord, ttl: float, body: tp.Callable[[int], None]) -> bool:
    """Runs ``body(now)`` while holding ``<path>.takeover``; a stale one (a dead taker's) is removed.
    Returns False when another taker holds it."""
    guard = Path(f"{path}.takeover")
    for _ in range(4):
        created, now = create_by_link(guard, record.encoded(), False)
        if created:
            try:
                body(now)
            finally:
                if _holds(guard, record.token):
                    _unlink(guard)
            return True
        other = observe(guard, now, ttl)
        if other is None:
            continue
        if not other.is_stale:
            return False
        again = observe(guard, now, ttl)
        if again is not None and again.unchanged(other):
            _unlink(guard)
    return False


class _Heartbeats:
    """The one thread that beats every lease of the process, each at its own interval: a worker holding
    thousands of claims (a MapInfra call over many items) runs one thread, not one per claim (threads are
    limited per process and per container)."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # the parent's leases, and thread, are not the child's

    def _reset(self) -> None:
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, "Lease"]] = []
        self._order = itertools.count()
        self._thread: tp.Optional[threading.Thread] = None

    def add(self, lease: "Lease") -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + lease.interval, next(self._order), lease))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="casket-lease-heartbeat", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    if not self._due:
                        self._wake.wait()
                        continue
                    due, _, lease = self._due[0]
                    wait = due - time.monotonic()
                    if lease._stop.is_set() or wait <= 0:
                        heapq.heappop(self._due)
                        if not lease._stop.is_set():
                            break
                        continue
                    self._wake.wait(wait)
            if lease._beat():  # outside the lock: a slow file system never blocks add()
                with self._wake:
                    heapq.heappush(self._due, (time.monotonic() + lease.interval, next(self._order), lease))


_HEARTBEATS = _Heartbeats()


class Lease:
    """A lease this process holds, kept alive by the process's heartbeat thread until :meth:`release`."""

    def __init__(self, path: Path, record: LeaseRecord, ttl: float, heartbeat: float,
                 took_over: tp.Optional[LeaseHolder]) -> None:
        self.path, self.record, self.ttl, self.interval, self.took_over = path, record, ttl, heartbeat, took_over
        self._lost = False
        self._last_refresh = time.monotonic()
        self._stop = threading.Event()
        _HEARTBEATS.add(self)

    @classmethod
    def acquire(cls, path: Path, fields: dict, ttl: float, heartbeat: float,
                sync: bool) -> tp.Union["Lease", LeaseHolder]:
        """Takes the lease, taking over a stale one; never waits. Returns the lease, or the holder seen."""
        _check_positive(ttl, heartbeat)
        record = LeaseRecord.mine(fields)
        took_over: list[LeaseHolder] = []
        for _ in range(16):
            created, now = create_by_link(path, record.encoded(), sync)
            if created:
                return cls(path, record, ttl, heartbeat, took_over[-1] if took_over else None)
            holder = observe(path, now, ttl)
            if holder is None:
                continue  # released meanwhile
            if not holder.is_stale:
                return holder

            def take(now: int, holder: LeaseHolder = holder) -> None:
                again = observe(path, now, ttl)  # judged again under the takeover file
                if again is not None and again.is_stale and again.unchanged(holder):
                    _unlink(path)
                    took_over.append(again)

            if not with_takeover_file(path, record, ttl, take):
                return holder  # another taker is at it
        raise CasketError(f"could not take the lease '{path}': it kept changing hands")

    @property
    def silence_limit(self) -> float:
        return max(self.ttl, 4 * self.interval)

    @property
    def lost(self) -> bool:
        """True once the file is gone or holds another token, or no heartbeat succeeded for a TTL."""
        return self._lost or time.monotonic() - self._last_refresh > self.silence_limit

    def is_held(self) -> bool:
        return _holds(self.path, self.record.token)

    def _beat(self) -> bool:
        """One heartbeat: checks the file still holds this owner's token, then touches it. False once there is
        nothing more to beat (released, or lost)."""
        if self._stop.is_set():
            return False
        try:
            data = _read_regular(self.path)
            record = LeaseRecord.parse(data) if data is not None else None
            if record is None or record.token != self.record.token:
                ok: tp.Optional[bool] = False
            else:
                os.utime(self.path)
                ok = True
        except FileNotFoundError:
            ok = False
        except OSError:
            ok = None
        if self._stop.is_set():
            return False
        if ok:
            self._last_refresh = time.monotonic()
        elif ok is False or time.monotonic() - self._last_refresh > self.silence_limit:
            self._lost = True
            return False
        return True

    def release(self) -> None:
        """Stops the heartbeat; removes the file if it still holds this owner's token. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()

        def remove(_now: int) -> None:
            if self.is_held():
                _unlink(self.path)

        # Another process's takeover file is, almost always, the previous holder's release still finishing
        # (this lease may be taken in the moment before its file goes) or a taker that will find this lease
        # live: try again for about a second rather than leave a live-looking claim that blocks its key for a
        # TTL; after that (a taker that judged this lease stale), leave it. As the Swift Lease.release.
        pause = 0.0005
        for _ in range(RELEASE_ATTEMPTS):
            try:
                if with_takeover_file(self.path, self.record, self.ttl, remove):
                    return
            except OSError:
                remove(0)
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


RELEASE_ATTEMPTS = 24  # tries of a release at <lease>.takeover, about 1 s in all


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
