"""Compute once in exca's ``MapInfra`` through Casket's claims (docs/EXCA.md, "Compute once").

exca 0.5.29 and 0.6.0 coordinate workers with an SQLite registry (``inflight.db``) that is advisory: on
NFS its locks are best effort, and on any error it answers "everything is yours", so every worker computes
everything. With the switch on, ``exca.map`` gets its own ``inflight`` binding whose ``inflight_session``
hands out a :class:`MapClaim` instead, and ``MapInfra._recheck_after_wait`` (called inside that session
with the items) claims them through Casket's claims (docs/CLAIMS.md): what nobody computes is claimed and
computed here, what a live worker computes is waited for and read, and what a dead worker held is taken
over and computed again through the same ``MapInfra`` call, so in its cluster mode. No worker holds a
claim while it waits, so no two workers can wait for each other. ``exca.steps`` keeps exca's registry.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
import types
import typing as tp

from .cachedict import CacheDict
from .claims import ClaimBoard, HeldClaim

__all__ = ["MapClaim", "patch_map_module", "restore"]

logger = logging.getLogger("casket.exca")

CLAIM_TTL = 60.0  # seconds: a worker on another host is judged dead after this long without a heartbeat
# (obj, attribute, value it had): what restore() puts back
_patches: list[tuple[tp.Any, str, tp.Any]] = []
_request = threading.local()  # .items: the items of this thread's MapInfra call, see patch_map_module


class MapClaim:
    """What ``exca.map`` sees as its in-flight claim (``uids``, ``record_worker_info``, ``hand_off``).

    ``uids`` is every requested item until ``_recheck_after_wait`` calls :meth:`claim`, then the items this
    worker holds. When the cache is not a Casket store (no folder, or a ``CacheDict`` exca built before the
    switch), exca's own session is entered there and decides, as without the switch.
    """

    def __init__(self, reg: tp.Any, uids: tp.Collection[str], original_session: tp.Callable[..., tp.Any]) -> None:
        self.uids: tuple[str, ...] = tuple(uids)
        self.waited = False
        self.worker = None
        self.folder = None
        self._reg = reg
        self._original_session = original_session
        self._stack = contextlib.ExitStack()
        self._delegate: tp.Any = None  # exca's own claim, when exca's session decides
        self._cache: tp.Optional[CacheDict[tp.Any]] = None
        self._board: tp.Optional[ClaimBoard] = None
        self._infra: tp.Any = None
        self._items: dict[str, tp.Any] = {}
        self._request: tp.Mapping[str, tp.Any] = {}  # the call's items, kept under forbid_single_item_computation
        self._held: dict[str, HeldClaim] = {}
        self._others: list[str] = []

    # ------------------------------------------------------------------ what exca.map calls

    def record_worker_info(self, *args: tp.Any, **kwargs: tp.Any) -> None:
        """exca stamps the submitit job running the items; a Casket claim's holder is this process, whose
        heartbeat runs while it waits for the jobs."""
        if self._delegate is not None:
            self._delegate.record_worker_info(*args, **kwargs)

    def hand_off(self, uids: tp.Iterable[str]) -> None:
        if self._delegate is not None and hasattr(self._delegate, "hand_off"):
            self._delegate.hand_off(uids)

    # ------------------------------------------------------------------ claiming

    def claim(self, infra: tp.Any, missing: list[tuple[str, tp.Any]],
              recheck: tp.Callable[..., list[tuple[str, tp.Any]]],
              request: tp.Mapping[str, tp.Any]) -> list[tuple[str, tp.Any]]:
        """Claims the missing items nobody computes; returns those this worker computes now (exca's
        ``_recheck_after_wait`` filter on them: held, and still absent from the store)."""
        cache = _casket_cache(infra)
        if cache is None:
            self._delegate = self._stack.enter_context(self._original_session(self._reg, list(self.uids)))
            return recheck(infra, missing, self._delegate)
        self._close_registry()
        self._cache, self._infra, self._items, self._request = cache, infra, dict(missing), request
        board = self._board = ClaimBoard(cache.store, CLAIM_TTL)
        first_holder = None
        with cache.frozen_cache_folder():  # one read of the index for the whole pass
            for key, _ in missing:
                if key in cache:
                    continue
                got = board.try_claim(key)
                if isinstance(got, HeldClaim):
                    self._held[key] = got
                else:
                    self._others.append(key)
                    first_holder = first_holder or got
        if self._others:
            self.waited = True
            logger.info("%d of %d items are being computed by other workers (%s, ...): computing the %d claimed "
                        "here first, then waiting for theirs", len(self._others), len(missing),
                        _holder(first_holder), len(self._held))
        self.uids = tuple(self._held)
        todo = recheck(infra, missing, self)  # a fresh read: a previous holder may have stored just before releasing
        keep = {key for key, _ in todo}
        for key in [k for k in self._held if k not in keep]:
            self._held.pop(key).release()
        return todo

    # ------------------------------------------------------------------ leaving the session

    def abandon(self, *exc: tp.Any) -> None:
        """The work failed: release what is held (waiters compute it), and leave exca's session if entered."""
        self._release()
        self._close_registry()
        self._stack.__exit__(*exc)

    def finish(self) -> None:
        """The work is stored: release, then wait for the items other workers held, computing those whose
        worker died or released them unstored."""
        self._release()
        self._stack.close()
        self._close_registry()
        if self._cache is None or not self._others:
            return
        cache, board = self._cache, self._board
        assert board is not None
        pending = self._others
        delay, started, next_log = 0.02, time.monotonic(), time.monotonic() + 600
        while True:
            with cache.frozen_cache_folder():
                pending = [key for key in pending if key not in cache]
            if not pending:
                return
            free = board.free(pending)
            if free:
                self._compute_again(free)
                delay = 0.02
                continue
            if time.monotonic() > next_log:
                logger.info("still waiting for %d items other workers compute (%.0f s)", len(pending),
                            time.monotonic() - started)
                next_log += 600
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _compute_again(self, keys: list[str]) -> None:
        """Items whose claim is gone or stale and whose value is absent: their worker died (or failed). The
        same MapInfra call computes them (in its cluster mode), claiming them first, so one worker does."""
        logger.info("taking over %d items whose worker died or released them without storing them (e.g. %r)",
                    len(keys), keys[0])
        state = getattr(self._infra, "_state", None)
        recomputed = getattr(state, "recomputed", None)
        if isinstance(recomputed, set):  # mode="force": recorded as recomputed by this call, but not computed
            recomputed.difference_update(keys)
        items = [self._items[key] for key in keys]
        if len(keys) == 1:  # not a single-item call: forbid_single_item_computation would refuse it
            items += itertools.islice((item for key, item in self._request.items() if key != keys[0]), 1)
        self._infra._method_override(items)

    def _release(self) -> None:
        while self._held:
            _, held = self._held.popitem()
            held.release()

    def _close_registry(self) -> None:
        reg, self._reg = self._reg, None
        if reg is not None and self._delegate is None and hasattr(reg, "close"):
            reg.close()


def _casket_cache(infra: tp.Any) -> tp.Optional[CacheDict[tp.Any]]:
    if getattr(infra, "folder", None) is None:
        return None
    try:
        cache = infra.cache_dict
    except ValueError:  # no cache at all
        return None
    return cache if isinstance(cache, CacheDict) and cache.folder is not None else None


def _holder(record: tp.Any) -> str:
    return "unknown" if record is None else f"pid {record.pid} on {record.host}"


class _MapInflight(types.ModuleType):
    """``exca.map``'s view of ``exca.cachedict.inflight``: the same module but for ``inflight_session``."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_casket_real"] = real
        original = real.inflight_session

        @contextlib.contextmanager
        def inflight_session(reg: tp.Any, item_uids: tp.Collection[str]) -> tp.Iterator[MapClaim]:
            claim = MapClaim(reg, item_uids, original)
            try:
                yield claim
            except BaseException as e:
                claim.abandon(type(e), e, e.__traceback__)
                raise
            claim.finish()

        self.__dict__["inflight_session"] = inflight_session

    def __getattr__(self, name: str) -> tp.Any:
        return getattr(self.__dict__["_casket_real"], name)


def patch_map_module(module: types.ModuleType) -> None:
    """Routes ``module`` (``exca.map``)'s MapInfra through Casket's claims; a no-op for an exca without the
    in-flight session (0.5.11, for one: there, nothing coordinates workers, with the switch or without)."""
    infra = getattr(module, "MapInfra", None)
    real = getattr(module, "inflight", None)
    if infra is None or not isinstance(real, types.ModuleType) or isinstance(real, _MapInflight):
        return
    if not all(hasattr(infra, name) for name in ("_recheck_after_wait", "_find_missing")) or not hasattr(
            real, "inflight_session"):
        return
    original = infra.__dict__.get("_recheck_after_wait", infra._recheck_after_wait)
    find_missing = infra.__dict__.get("_find_missing", infra._find_missing)

    def _recheck_after_wait(self: tp.Any, missing: list[tuple[str, tp.Any]], claim: tp.Any) -> tp.Any:
        request, _request.items = getattr(_request, "items", None), None
        if isinstance(claim, MapClaim):
            return claim.claim(self, missing, original, request or {})
        return original(self, missing, claim)

    def _find_missing(self: tp.Any, items: dict[str, tp.Any]) -> tp.Any:
        out = find_missing(self, items)
        # the whole call's items, which the session is not given: needed only to take one item over under
        # forbid_single_item_computation (kept no longer than the session, and only then)
        _request.items = items if out and getattr(self, "forbid_single_item_computation", False) else None
        return out

    _patches.append((module, "inflight", real))
    _patches.append((infra, "_recheck_after_wait", original))
    _patches.append((infra, "_find_missing", find_missing))
    module.inflight = _MapInflight(real)  # type: ignore[attr-defined]
    infra._recheck_after_wait = _recheck_after_wait
    infra._find_missing = _find_missing


def restore() -> None:
    """Puts back what :func:`patch_map_module` replaced."""
    while _patches:
        obj, attr, value = _patches.pop()
        setattr(obj, attr, value)
