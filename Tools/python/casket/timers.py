"""Timers without a thread each: one daemon thread per process waits for every deadline.

A write session arms two timers (its batch's commit age, FORMAT 5.5, and the seal of the writers it keeps
for the next session, casket.kept) and nearly always cancels both before they fire. ``threading.Timer``
starts a thread for each, and starting one waits for the new thread to run: on a busy machine that
cost more than the session's flushes. Here arming is a heap push; only a timer that fires gets a thread,
so its callback may block (a commit flushes) without delaying the others.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import typing as tp

from .store import current_pid

_log = logging.getLogger("casket")
_PRUNE_AT = 64  # cancelled timers the heap may hold before it drops them (and half its length)


class Timer:
    """A callback due at a deadline, run in a thread of its own when it fires, unless cancelled first."""

    __slots__ = ("deadline", "callback", "cancelled", "_clock")

    def __init__(self, deadline: float, callback: tp.Callable[[], None], clock: "_Clock") -> None:
        self.deadline, self.cancelled, self._clock = deadline, False, clock
        self.callback: tp.Optional[tp.Callable[[], None]] = callback

    def cancel(self) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        # what the callback holds (a session's kept writers) goes now, not when the entry comes due
        self.callback = None
        self._clock.cancelled += 1  # approximate without the lock: after() counts again when it prunes


class _Clock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._pid = 0  # the process whose thread runs; a forked child starts its own
        # cancelled timers still in the heap, which are popped only once at its top: a loop of sessions
        # cancels one timer of 5 s (casket.kept) per session, thousands a second
        self.cancelled = 0

    def after(self, delay: float, callback: tp.Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback, self)
        with self._cond:
            if self._pid != current_pid():
                self._heap = []  # a forked child: its parent's timers are not its own
                self._pid = current_pid()
                threading.Thread(target=self._run, name="casket-timers", daemon=True).start()
            if self.cancelled > _PRUNE_AT and 2 * self.cancelled > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self.cancelled = 0
            first = not self._heap or timer.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (timer.deadline, next(self._seq), timer))
            if first:
                self._cond.notify()
        return timer

    def _run(self) -> None:
        pid = current_pid()
        with self._cond:
            while self._pid == pid:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                    self.cancelled = max(0, self.cancelled - 1)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                timer = heapq.heappop(self._heap)[2]
                try:
                    threading.Thread(target=self._fire, args=(timer,), name="casket-timer", daemon=True).start()
                except RuntimeError:  # no thread to be had (a limit, the interpreter's shutdown): run it here,
                    self._cond.release()  # rather than let this thread die and no timer ever fire again
                    try:
                        self._fire(timer)
                    finally:
                        self._cond.acquire()

    @staticmethod
    def _fire(timer: Timer) -> None:
        callback = timer.callback
        if timer.cancelled or callback is None:
            return
        try:
            callback()
        except BaseException:  # a thread of its own would print it and die; here it must not stop the others
            _log.exception("casket: a timer's callback %r failed", callback)


_CLOCK = _Clock()


def _forked() -> None:
    global _CLOCK
    _CLOCK = _Clock()  # a thread of the parent may have held the lock at the fork: never taken again here


os.register_at_fork(after_in_child=_forked)


def after(delay: float, callback: tp.Callable[[], None]) -> Timer:
    """Calls ``callback()`` in a thread of its own ``delay`` seconds from now, unless the timer returned is
    cancelled before."""
    return _CLOCK.after(delay, callback)
