"""Event logs: what each process did and when, for a trace of a run.

Each participant (an emulated CPU, the NIC) owns a fixed-size log of
events in shared memory: ``EV_WORDS`` int64 words per event (timestamp ns,
kind, two arguments).  Recording never allocates: an event is four word
stores and a head update by the owner, the only writer.  A full log keeps
what it has and counts the events it drops (:data:`TRACE_HEAD.dropped`), so
a trace says how much it lost.  The supervisor reads the logs after the run
(:func:`read_events`).

What an event *means* is the recorder's business: the kernel model names
its tracepoints (``netq.kernel.tracepoints``); this module knows the lock
events only, because it can record them for any :class:`shm.lock.SpinLock`
without the lock knowing (:func:`trace_lock`), as lockdep's
``lock:contention_begin`` / ``contention_end`` and lock_stat do in the
kernel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .layout import Layout, Record, field

if TYPE_CHECKING:
    from .lock import SpinLock
    from .region import Region

#: words per event: timestamp (ns), kind, argument a, argument b
EV_WORDS = 4
EV_TS, EV_KIND, EV_A, EV_B = range(EV_WORDS)

# Lock events (a = lock id).  CONTENTION_BEGIN/END bracket a wait that had
# to wait (lock:contention_begin/end); ACQUIRED starts a hold (b: 1 after a
# contended wait, 2 by a trylock, 0 else), RELEASED ends it.
LOCK_CONTENTION_BEGIN = 1
LOCK_CONTENTION_END = 2
LOCK_ACQUIRED = 3
LOCK_RELEASED = 4
LOCK_TRYLOCK_FAILED = 5
#: the first kind free for the recorder's own events
FIRST_USER_KIND = 16


class TRACE_HEAD(Record, name="trace_head"):
    head = field("events written to this participant's log; owner")
    dropped = field("events that found the log full; owner")


def trace_layout(layout: Layout, participants: int, capacity: int) -> None:
    """Place the logs of ``participants`` processes, ``capacity`` events each."""
    if capacity < 1:
        raise ValueError("a trace log holds at least one event")
    layout.add("trace_head", TRACE_HEAD, participants)
    layout.add_raw("trace_events", (participants, capacity * EV_WORDS))


class Tracer:
    """One participant's log: :meth:`emit` records an event now,
    :meth:`emit_at` at a given time (the NIC's wire finish, a lock wait's
    start known only after the wait)."""

    __slots__ = ("_cap", "_ev", "_head", "_n", "clock", "me")

    def __init__(
        self, region: Region, me: int, clock: Callable[[], int] = time.perf_counter_ns
    ) -> None:
        sec = region.layout["trace_events"]
        if not 0 <= me < sec.count:
            raise ValueError(f"participant {me} out of range (0..{sec.count - 1})")
        self.me = me
        self._ev = region.words[sec.base(me) : sec.base(me) + sec.stride]
        self._cap = sec.stride // EV_WORDS
        self._head = region.section_words("trace_head", me)
        self._n = self._head[TRACE_HEAD.head]
        self.clock = clock

    def emit(self, kind: int, a: int = 0, b: int = 0) -> None:
        self.emit_at(self.clock(), kind, a, b)

    def emit_at(self, ts: int, kind: int, a: int = 0, b: int = 0) -> None:
        n = self._n
        if n >= self._cap:
            self._head[TRACE_HEAD.dropped] += 1
            return
        i = n * EV_WORDS
        ev = self._ev
        ev[i] = ts
        ev[i + 1] = kind
        ev[i + 2] = a
        ev[i + 3] = b
        self._n = n + 1
        self._head[TRACE_HEAD.head] = n + 1

    def emit_many(self, ts: np.ndarray, kind: int, a: np.ndarray, b: np.ndarray) -> None:
        """Record ``len(ts)`` events of one kind at once (a batch of wire
        finishes): as many as fit, the rest counted as dropped."""
        n, k = self._n, len(ts)
        room = min(k, self._cap - n)
        if room > 0:
            block = np.frombuffer(self._ev, dtype=np.int64)[n * EV_WORDS : (n + room) * EV_WORDS]
            rows = block.reshape(room, EV_WORDS)
            rows[:, EV_TS] = ts[:room]
            rows[:, EV_KIND] = kind
            rows[:, EV_A] = a[:room]
            rows[:, EV_B] = b[:room]
            del rows, block
            self._n = n + room
            self._head[TRACE_HEAD.head] = n + room
        if room < k:
            self._head[TRACE_HEAD.dropped] += k - max(room, 0)

    def release(self) -> None:
        """Drop this handle's views of the region (before it is closed)."""
        self._ev.release()
        self._head.release()


def read_events(region: Region) -> list[tuple[np.ndarray, int]]:
    """Every participant's events (a copy, ``(n, EV_WORDS)`` int64) and how
    many it dropped, in participant order."""
    sec = region.layout["trace_events"]
    heads = region.array("trace_head")
    out = []
    for p in range(sec.count):
        n = int(heads["head"][p])
        words = region.words[sec.base(p) : sec.base(p) + n * EV_WORDS]
        out.append((np.array(words, dtype=np.int64).reshape(n, EV_WORDS), int(heads["dropped"][p])))
        words.release()
    del heads
    return out


def trace_lock(lock: SpinLock, tracer: Tracer) -> None:
    """Make ``lock`` (one CPU's handle) record its waits and holds in
    ``tracer``: its ``lock``/``unlock``/``trylock`` are replaced by recording
    versions of themselves, so a run without tracing pays nothing."""
    lock_, unlock_, trylock_ = lock.lock, lock.unlock, lock.trylock
    lid, clock, emit_at = lock.id, tracer.clock, tracer.emit_at

    def traced_lock() -> bool:
        t0 = clock()
        waited = lock_()
        t1 = clock()
        if waited:
            emit_at(t0, LOCK_CONTENTION_BEGIN, lid)
            emit_at(t1, LOCK_CONTENTION_END, lid)
        emit_at(t1, LOCK_ACQUIRED, lid, 1 if waited else 0)
        return waited

    def traced_unlock() -> None:
        emit_at(clock(), LOCK_RELEASED, lid)
        unlock_()

    def traced_trylock() -> bool:
        got = trylock_()
        emit_at(clock(), LOCK_ACQUIRED if got else LOCK_TRYLOCK_FAILED, lid, 2)
        return got

    lock.lock, lock.unlock, lock.trylock = traced_lock, traced_unlock, traced_trylock
