"""Virtual time: each participant's own clock, a bounded window, and locks
whose waits and holds are counted in virtual time.

Wall-clock figures belong to the host (its cores, its scheduler, Python's
speed).  In virtual time a participant's clock advances only by what it is
*charged* — a cost model's price for each operation — and a lock acquired at
virtual time ``t`` is granted at ``max(t, release + handoff)`` (+ ``bounce``
when another participant held it last): the emulated machine's figures,
whatever the host.  The real processes, the real shared memory and the real
semaphores still decide who gets a lock first; only time is kept apart.

The scheme is lax synchronisation with a bounded window, as parallel
multicore simulators keep time (Graphite's LaxP2P, ZSim's bound phase, the
moving window of conservative parallel discrete-event simulation):

* **Charge before acting.**  A participant's clock is the virtual time of its
  next access to shared state.
* **Window.**  Before touching shared state at virtual time ``t`` a
  participant waits until the global virtual time (GVT) is at least
  ``t - slack``.  GVT is the minimum clock over the *other* participants that
  are running or **waiting for a lock** (a lock waiter holds GVT at the time
  it asked: without this rule a participant that just released a lock barges
  ahead of an earlier waiter).  A sleeping participant (one that waits for an
  event, not a lock) and a finished one do not hold GVT back.
* **Never wait at the window while holding a lock.**  A nested acquire goes
  straight to the lock (and is counted).  So a window-waiter holds nothing,
  every lock waiter waits for a holder that is running, and nothing
  deadlocks.
* The slack must stay below the shortest critical section; the run reports
  the largest skew seen at the window and the **order violations**: grants
  to a request that was later, in virtual time, than the one granted just
  before it (an earlier request was passed over).

Shared state (one :class:`VCLOCK` per participant on its own cache line, one
:class:`VLOCK` per lock) lives in a :class:`shm.region.Region`; a
:class:`VirtualCpu` is one participant's handle, and
:meth:`VirtualCpu.acquire` / :meth:`VirtualCpu.release` wrap a
:class:`shm.lock.SpinLock` (any fairness, any waiting) with the virtual-time
accounting.  Which lock instance it is, and what each operation costs, is
the caller's business: this module knows words and time, not networking.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .layout import Layout, Record, field
from .lock import RunAborted

if TYPE_CHECKING:
    from .lock import SpinLock
    from .region import Region

#: VCLOCK.state values
VT_RUN, VT_LOCKWAIT, VT_SLEEP, VT_DONE = 0, 1, 2, 3
VT_STATE_NAMES = ("running", "waiting for a lock", "sleeping", "done")
NO_OWNER = -1
#: window waits between checks of the abort flag
ABORT_CHECK_EVERY = 256


class VCLOCK(Record, name="vclock"):
    now = field(
        "virtual ns of this participant's next shared access (charged before acting); "
        "owner (the participant), read by every other one for GVT"
    )
    state = field("VT_*: whether this clock holds GVT back; owner")
    window_waits = field("times the window made this participant wait; owner")
    window_spins = field("GVT checks made while waiting at the window; owner")
    max_skew = field("largest clock - GVT seen when passing the window, ns; owner")
    nested = field("acquires made while holding a lock (no window wait); owner")
    lock_wait = field("virtual ns spent waiting for locks (charged as spinning); owner")
    wake_at = field(
        "virtual ns of the latest event that woke this participant; the waker, "
        "with max (a stale smaller value is never written)"
    )


class VLOCK(Record, name="vlock"):
    release = field("virtual ns of the last release; under the lock")
    owner = field("participant that released it last, NO_OWNER before; under the lock")
    last_request = field("virtual request time of the last grant; under the lock")
    grants = field("acquisitions; under the lock")
    violations = field(
        "grants to a request earlier than the request granted just before it; under the lock"
    )
    hold = field("virtual ns held in all; under the lock")
    wait = field("virtual ns waited in all, from request to grant; under the lock")


def vtime_layout(layout: Layout, participants: int, nlocks: int) -> None:
    """Place the clocks and the locks' virtual records in ``layout``."""
    layout.add("vclocks", VCLOCK, participants)
    layout.add("vlocks", VLOCK, nlocks)


def init_vtime(region: Region) -> None:
    """A new run: every clock at 0 and running, every lock never held."""
    for i in range(region.layout["vlocks"].count):
        region.section_words("vlocks", i)[VLOCK.owner] = NO_OWNER


class VirtualCpu:
    """One participant's handle on the run's virtual time.

    ``costs`` are the lock model's: ``handoff_ns`` (release to the next
    holder running, as a spinning waiter sees it) and ``bounce_ns`` (the lock's
    cache line coming from another participant).  ``abort`` is polled while
    waiting at the window (a run being torn down); it raises
    :class:`shm.lock.RunAborted` when true.
    """

    __slots__ = (
        "_clock_base",
        "_clocks",
        "_lock_rows",
        "_others",
        "abort",
        "bounce_ns",
        "busy",
        "handoff_ns",
        "held",
        "hold_start",
        "id",
        "last_real",
        "now",
        "slack_ns",
        "w",
    )

    def __init__(
        self,
        region: Region,
        me: int,
        *,
        slack_ns: int,
        handoff_ns: int,
        bounce_ns: int,
        abort: Callable[[], bool] = lambda: False,
    ) -> None:
        lay = region.layout
        clocks = lay["vclocks"]
        if not 0 <= me < clocks.count:
            raise ValueError(f"participant {me} out of range (0..{clocks.count - 1})")
        if slack_ns < 0 or handoff_ns < 0 or bounce_ns < 0:
            raise ValueError("slack, handoff and bounce are non-negative ns")
        self.id = me
        self.w = region.words
        self.slack_ns = slack_ns
        self.handoff_ns = handoff_ns
        self.bounce_ns = bounce_ns
        self.abort = abort
        self._clocks = clocks
        #: what the last lock call of :meth:`acquire` returned (the real
        #: lock's "did I wait")
        self.last_real: object = None
        #: word index of every *other* participant's clock (now, state follow)
        self._others = [clocks.base(i) for i in range(clocks.count) if i != me]
        self._lock_rows = lay["vlocks"]
        #: word index of this participant's clock row
        self._clock_base = clocks.base(me)
        self.now = self.w[self._clock_base + VCLOCK.now]
        self.held = 0
        #: virtual ns charged or spent waiting for locks: this participant's
        #: CPU time (idle advances are not counted)
        self.busy = 0
        #: per held lock: the virtual time it was granted (hold accounting)
        self.hold_start: dict[int, int] = {}
        self._set_state(VT_RUN)

    # -- the clock ------------------------------------------------------------------
    def charge(self, ns: int) -> None:
        """Advance this clock by the cost of an operation about to be done."""
        self.now += ns
        self.busy += ns

    def idle_until(self, t: int) -> None:
        """Nothing to do before virtual time ``t`` (a rate-limited sender):
        the clock moves, the CPU time does not."""
        if t > self.now:
            self.now = t

    def publish(self) -> None:
        """Make this clock visible to the others (they compute GVT from it)."""
        self.w[self._clock_base + VCLOCK.now] = self.now

    def _set_state(self, state: int) -> None:
        self.w[self._clock_base + VCLOCK.state] = state

    def gvt(self) -> int | None:
        """The minimum clock over the other participants that run or wait
        for a lock; None when none does."""
        w = self.w
        low: int | None = None
        for b in self._others:
            if w[b + VCLOCK.state] <= VT_LOCKWAIT:
                t = w[b + VCLOCK.now]
                if low is None or t < low:
                    low = t
        return low

    def window(self) -> None:
        """Wait until GVT >= now - slack before a shared access (never while
        a lock is held: then the access goes ahead and is counted)."""
        w, b = self.w, self._clock_base
        w[b + VCLOCK.now] = self.now
        if self.held:
            w[b + VCLOCK.nested] += 1
            return
        limit = self.now - self.slack_ns
        g = self.gvt()
        if g is None or g >= limit:
            self._skew(g)
            return
        w[b + VCLOCK.window_waits] += 1
        spins = 0
        while True:
            spins += 1
            if spins % ABORT_CHECK_EVERY == 0 and self.abort():
                w[b + VCLOCK.window_spins] += spins
                raise RunAborted("aborted while waiting at the virtual-time window")
            os.sched_yield()
            g = self.gvt()
            if g is None or g >= limit:
                break
        w[b + VCLOCK.window_spins] += spins
        self._skew(g)

    def _skew(self, g: int | None) -> None:
        if g is not None and self.now - g > self.w[self._clock_base + VCLOCK.max_skew]:
            self.w[self._clock_base + VCLOCK.max_skew] = self.now - g

    def sleep(self) -> None:
        """This participant waits for an event (not a lock): it stops holding
        GVT back until :meth:`wake`."""
        self.publish()
        self._set_state(VT_SLEEP)

    def wake(self, at: int | None = None) -> None:
        """Woken by an event that happened at virtual time ``at`` (default:
        the latest time a waker left in ``wake_at``)."""
        if at is None:
            at = self.w[self._clock_base + VCLOCK.wake_at]
        if at > self.now:
            self.now = at
        self.publish()
        self._set_state(VT_RUN)

    def wake_other(self, other_base: int) -> None:
        """Wake the participant whose clock row is at ``other_base`` at this
        clock: it resumes at this virtual time at the earliest, and holds GVT
        from now on (so that nobody runs past the event before it wakes)."""
        w, t = self.w, self.now
        if w[other_base + VCLOCK.wake_at] < t:
            w[other_base + VCLOCK.wake_at] = t
        if w[other_base + VCLOCK.state] == VT_SLEEP:
            if w[other_base + VCLOCK.now] < t:
                w[other_base + VCLOCK.now] = t
            w[other_base + VCLOCK.state] = VT_RUN

    def clock_base(self, participant: int) -> int:
        """Word index of ``participant``'s clock row (for :meth:`wake_other`)."""
        return self._clocks.base(participant)

    def done(self) -> None:
        """This participant is finished: it never holds GVT back again."""
        self.publish()
        self._set_state(VT_DONE)

    # -- locks ----------------------------------------------------------------------
    def acquire(self, lock: SpinLock | Callable[[], object], vlock_id: int) -> int:
        """Acquire ``lock`` (a lock, or its lock call; its virtual record is
        ``vlock_id``) at this clock; returns the virtual ns waited (already
        charged)."""
        self.window()
        w, b = self.w, self._clock_base
        t = self.now
        w[b + VCLOCK.now] = t
        w[b + VCLOCK.state] = VT_LOCKWAIT  # holds GVT at the request time
        try:
            self.last_real = lock() if callable(lock) else lock.lock()
        finally:
            w[b + VCLOCK.state] = VT_RUN
        v = self._lock_rows.base(vlock_id)
        last = w[v + VLOCK.owner]
        grant = t
        if last != NO_OWNER:
            # released at `release`; a waiter runs with it `handoff` later
            grant = max(t, w[v + VLOCK.release] + self.handoff_ns)
            if last != self.id:
                grant += self.bounce_ns  # the lock's line comes from its last owner
        if t < w[v + VLOCK.last_request]:
            w[v + VLOCK.violations] += 1
        w[v + VLOCK.last_request] = t
        w[v + VLOCK.grants] += 1
        waited = grant - t
        w[v + VLOCK.wait] += waited
        w[b + VCLOCK.lock_wait] += waited
        self.now = grant
        self.busy += waited
        w[b + VCLOCK.now] = grant
        self.held += 1
        self.hold_start[vlock_id] = grant
        return waited

    def try_acquire(self, trylock: Callable[[], bool], vlock_id: int) -> bool:
        """spin_trylock at this clock: if the real trylock gets the lock it
        is granted at ``max(now, release)`` (+ bounce): a lock released later
        in virtual time than this attempt was, in virtual time, still held,
        and the attempt's success is the race's, not the clock's."""
        self.window()
        if not trylock():
            return False
        w = self.w
        v = self._lock_rows.base(vlock_id)
        last = w[v + VLOCK.owner]
        grant = self.now
        if last != NO_OWNER:
            grant = max(grant, w[v + VLOCK.release])
            if last != self.id:
                grant += self.bounce_ns
        w[v + VLOCK.grants] += 1
        self.busy += grant - self.now
        self.now = grant
        self.held += 1
        self.hold_start[vlock_id] = grant
        return True

    def release(self, lock: SpinLock | Callable[[], object], vlock_id: int) -> None:
        """Release ``lock`` (a lock, or its unlock call) at this clock (the
        critical section's costs charged)."""
        w = self.w
        v = self._lock_rows.base(vlock_id)
        w[v + VLOCK.release] = self.now
        w[v + VLOCK.owner] = self.id
        w[v + VLOCK.hold] += self.now - self.hold_start.pop(vlock_id)
        self.held -= 1
        if callable(lock):
            lock()
        else:
            lock.unlock()
        self.publish()


def virtual_lock(lock: SpinLock, vcpu: VirtualCpu, lock_ns: int) -> None:
    """Make ``lock`` (one participant's handle) keep virtual time through
    ``vcpu``: each ``lock``/``unlock``/``trylock`` waits at the window,
    is granted in virtual time (:meth:`VirtualCpu.acquire`) and charges
    half of an uncontended lock+unlock (``lock_ns``); the real lock still
    decides who gets it first.  ``lock`` returns whether the grant waited in
    virtual time and leaves that wait in ``last_wait_ns`` (the real lock's
    wall-time queue, which the window keeps short, is not what a caller
    measures here); ``last_ahead`` is 0: the virtual queue is not counted."""
    lock_, unlock_, trylock_ = lock.lock, lock.unlock, lock.trylock
    vid, half = lock.id, lock_ns // 2

    def vlock() -> bool:
        waited = vcpu.acquire(lock_, vid)
        vcpu.charge(half)
        lock.last_wait_ns, lock.last_ahead = waited, 0
        return waited > 0

    def vunlock() -> None:
        vcpu.charge(lock_ns - half)
        vcpu.release(unlock_, vid)

    def vtrylock() -> bool:
        vcpu.charge(half)
        return vcpu.try_acquire(trylock_, vid)

    lock.lock, lock.unlock, lock.trylock = vlock, vunlock, vtrylock
