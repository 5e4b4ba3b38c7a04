"""Virtual time: each participant's own clock, a bounded window, and locks
whose waits and holds are counted in virtual time.

Wall-clock figures belong to the host (its cores, its scheduler, Python's
speed).  In virtual time a participant's clock advances only by what it is
*charged* — a cost model's price for each operation — and a lock acquired at
virtual time ``t`` is granted at ``max(t, release + handoff + spinners x
spinner)`` (+ ``bounce`` when another participant held it last), where
``spinners`` are the other participants that were already waiting for it at
its release: the emulated machine's figures, whatever the host.  The real
processes, the real shared memory and the real semaphores stay; the window
makes them act in virtual-time order, so that a run's figures are a
function of its configuration (docs/virtual-time.md): one order whatever the
host does.

The scheme is lax synchronisation with a bounded window, as parallel
multicore simulators keep time (Graphite's LaxP2P, ZSim's bound phase, the
moving window of conservative parallel discrete-event simulation):

* **Charge before acting.**  A participant's clock is the virtual time of its
  next access to shared state.
* **Window.**  Before touching shared state at virtual time ``t`` a
  participant waits until the global virtual time (GVT) is at least
  ``t - slack`` (at equal times, until the others rank after it: ranks are
  a permutation of the participants that changes with the time).  GVT is
  the minimum, over the *other* participants that
  are running or **waiting for a lock**, of the virtual time of their next
  action: a lock waiter's is the time it asked (without this rule a
  participant that just released a lock barges ahead of an earlier waiter)
  or, if later, its lock's holder's next action, transitively (it cannot act
  before the holder releases).  A sleeping participant (one that waits for
  an event, not a lock) and a finished one do not hold GVT back.
* **A holder acts at its grant time.**  After a grant that waited, the
  holder waits at the window before touching anything, and nested acquires
  pass the window too: what the others do earlier in virtual time is done
  first in wall time.  A holder is never held back by its own waiters (they
  count at its clock) and the kernel's lock order is acyclic, so the
  participant with the earliest next action can always go on: no deadlock.
* **Spinners.**  Each other participant spinning on the lock at its
  release makes the handoff ``spinner`` later (a ticket lock's release
  invalidates every spinner's copy of the line; their re-reads are served
  one after another).  They are counted exactly: the next holder (and a
  holder about to write the lock's line) first waits at the window for
  every action before the release.
* **Queue places.**  A request joins the real lock's FIFO queue while it
  still holds GVT at its request time (``SpinLock.lock_queue``), so the
  real lock serves its waiters in virtual order.
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
#: longest chain of lock waiters followed for GVT (waiter -> holder, who
#: waits for another lock -> its holder ...): the kernel nests at most
#: busylock -> root_lock -> _xmit_lock
MAX_LOCK_CHAIN = 8
#: window waits between checks of the abort flag
ABORT_CHECK_EVERY = 256
#: the window orders actions by (virtual time, rank).  At one virtual time
#: the participants' ranks are a permutation of their numbers that changes
#: with the time (``(number + hash(time)) % participants``, ``_MIX`` a
#: multiplicative hash), so that ties go one way whatever the host does,
#: without favouring one CPU; a lock waiter counted at its holder's clock
#: comes after every action at that time.
_MIX = 0x9E3779B97F4A7C15


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
    waits_on = field(
        "1 + the vlock this participant is acquiring (at the window or waiting for "
        "it), else 0; owner, read by the participant being granted that lock "
        "(its spinners)"
    )


class VLOCK(Record, name="vlock"):
    holder = field(
        "1 + the participant holding it, 0 when free; under the lock, read by "
        "GVT (a waiter cannot act before its holder releases)"
    )
    release = field("virtual ns of the last release; under the lock")
    owner = field("participant that released it last, NO_OWNER before; under the lock")
    last_request = field("virtual request time of the last grant; under the lock")
    grants = field("acquisitions; under the lock")
    violations = field(
        "grants to a request earlier than the request granted just before it; under the lock"
    )
    hold = field("virtual ns held in all; under the lock")
    wait = field("virtual ns waited in all, from request to grant; under the lock")
    spinners = field(
        "other waiters counted at the grants' releases (each slowed a handoff); under the lock"
    )
    trylock_held = field(
        "trylocks that got the real lock but failed: it was still held at their "
        "virtual time; under the lock"
    )
    line_writes = field(
        "writes a critical section makes to data on the lock's own cache line "
        "(a qdisc's qlen beside its root lock); set once at the start"
    )
    line_spinners = field(
        "other spinners that such writes made the holder wait for, in all; under the lock"
    )


#: word offsets the window's scan reads (module constants: the scan runs in
#: every wait)
_NOW, _STATE, _WAITS_ON = VCLOCK.now, VCLOCK.state, VCLOCK.waits_on
_HOLDER = VLOCK.holder


def vtime_layout(layout: Layout, participants: int, nlocks: int) -> None:
    """Place the clocks and the locks' virtual records in ``layout``."""
    layout.add("vclocks", VCLOCK, participants)
    layout.add("vlocks", VLOCK, nlocks)


def init_vtime(region: Region, line_writes: dict[int, int] | None = None) -> None:
    """A new run: every clock at 0 and running, every lock never held;
    ``line_writes``: lock id -> writes each of its critical sections makes to
    data on the lock's own cache line (see :meth:`VirtualCpu.release`)."""
    for i in range(region.layout["vlocks"].count):
        v = region.section_words("vlocks", i)
        v[VLOCK.owner] = NO_OWNER
        v[VLOCK.line_writes] = (line_writes or {}).get(i, 0)


class VirtualCpu:
    """One participant's handle on the run's virtual time.

    ``costs`` are the lock model's: ``handoff_ns`` (release to the next
    holder running, as a spinning waiter sees it), ``bounce_ns`` (the lock's
    cache line coming from another participant) and ``spinner_ns`` (what
    each *other* waiter spinning on the line at the release adds to the
    handoff: the release invalidates every spinner's copy and their
    re-reads are served one after another, the next holder's among them —
    the non-scalable ticket lock; 0 leaves the handoff flat).  ``abort`` is
    polled while waiting at the window (a run being torn down); it raises
    :class:`shm.lock.RunAborted` when true.
    """

    __slots__ = (
        "_clock_base",
        "_clock_bases",
        "_n",
        "_others",
        "_ranked",
        "_vlock_base",
        "abort",
        "bounce_ns",
        "busy",
        "handoff_ns",
        "held",
        "hold_start",
        "id",
        "last_real",
        "now",
        "released_ahead",
        "slack_ns",
        "spinner_ns",
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
        spinner_ns: int = 0,
        abort: Callable[[], bool] = lambda: False,
    ) -> None:
        lay = region.layout
        clocks = lay["vclocks"]
        if not 0 <= me < clocks.count:
            raise ValueError(f"participant {me} out of range (0..{clocks.count - 1})")
        if min(slack_ns, handoff_ns, bounce_ns, spinner_ns) < 0:
            raise ValueError("slack, handoff, bounce and spinner are non-negative ns")
        self.id = me
        self.w = region.words
        self.slack_ns = slack_ns
        self.handoff_ns = handoff_ns
        self.bounce_ns = bounce_ns
        self.spinner_ns = spinner_ns
        self.abort = abort
        #: what the last lock call of :meth:`acquire` returned (the real
        #: lock's "did I wait")
        self.last_real: object = None
        #: whether the last :meth:`try_acquire` failed only in virtual time
        #: (the real lock was free: its holder had released it in wall time)
        self.released_ahead = False
        #: word index of every *other* participant's clock (now, state follow)
        self._others = [clocks.base(i) for i in range(clocks.count) if i != me]
        #: ... each with its number, from which its rank at a time follows
        self._ranked = [(clocks.base(i), i) for i in range(clocks.count) if i != me]
        self._n = clocks.count
        vlocks = lay["vlocks"]
        #: word index of each lock's VLOCK row
        self._vlock_base = [vlocks.base(i) for i in range(vlocks.count)]
        #: word index of each participant's clock row
        self._clock_bases = [clocks.base(i) for i in range(clocks.count)]
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
        """The minimum over the other participants that run or wait for a
        lock of the virtual time of their next action; None when none does.
        A running participant's is its clock; a lock waiter's is its request
        time or, if later, its lock's holder's next action (transitively: a
        holder may itself wait for a lock): it cannot act before the holder
        releases.  This lookahead keeps a holder from waiting for its own
        waiters, directly or through a nested lock (busylock, then
        root_lock)."""
        low = self._gvt_low()
        return None if low is None else low[0]

    def _gvt_low(self) -> tuple[int, int] | None:
        """:meth:`gvt` with the tie-break: ``(time, who)`` of the earliest
        next action, ``who`` the participant's number, or -1 for a lock
        waiter counted at its holder's clock, which comes after every
        action at that time (the holder's among them).  Of two actions at
        one time the lower-ranked participant's comes first (the ranks at
        a time are a permutation of the participants' numbers, see _MIX);
        the rank is worked out only for a tie."""
        w = self.w
        vlocks, bases = self._vlock_base, self._clock_bases
        low_t = low_who = 0
        found = False
        for b, who in self._ranked:
            state = w[b + _STATE]
            if state > VT_LOCKWAIT:
                continue
            t = w[b + _NOW]
            hops = 0
            while state == VT_LOCKWAIT and hops < MAX_LOCK_CHAIN:
                wo = w[b + _WAITS_ON]  # 0 if it has just been granted
                hd = w[vlocks[wo - 1] + _HOLDER] if wo else 0
                if not hd:
                    break
                b = bases[hd - 1]
                th = w[b + _NOW]
                if th > t or (th == t and who >= 0):
                    t, who = th, -1
                state = w[b + _STATE]
                hops += 1
            if not found or t < low_t:
                low_t, low_who, found = t, who, True
            elif t == low_t and who >= 0 and (low_who < 0 or self._before(who, low_who, t)):
                low_who = who
        return (low_t, low_who) if found else None

    def _before(self, a: int, b: int, t: int) -> bool:
        """Whether participant ``a`` ranks before ``b`` at virtual time ``t``."""
        h = t * _MIX >> 32
        n = self._n
        return (a + h) % n < (b + h) % n

    def _passes(self, low: tuple[int, int] | None, lt: int) -> bool:
        """Whether this participant, acting at ``lt``, comes before GVT's
        ``low`` (see :meth:`_gvt_low`)."""
        if low is None:
            return True
        t, who = low
        if t != lt:
            return t > lt
        return who < 0 or self._before(self.id, who, t)

    def may_act(self, t: int) -> bool:
        """Whether an action of this participant at virtual time ``t`` comes
        before every other participant's next action (the window's test,
        without the slack and without waiting)."""
        return self._passes(self._gvt_low(), t)

    def window(self) -> None:
        """Wait until GVT >= now - slack before a shared access.  Also while
        a lock is held (counted as nested): its waiters' next actions are no
        earlier than the holder's clock, so they never hold it back, and
        the kernel's lock order is acyclic, so the participant with the
        earliest next action can always go on."""
        if self.held:
            self.w[self._clock_base + VCLOCK.nested] += 1
        self._wait_gvt()

    def sync(self) -> None:
        """Wait at the window before a shared access that is no lock
        acquire (a lock-free flag another CPU sets), lock held or not."""
        self._wait_gvt()

    def _wait_gvt(self) -> None:
        """Publish this clock and wait until every other participant's next
        action comes after this one's, less the slack: GVT > now - slack,
        or equal to it and by a higher-ranked participant (actions at one
        virtual time go in the order of their ranks, not the host's)."""
        w, b = self.w, self._clock_base
        w[b + VCLOCK.now] = self.now
        lt = self.now - self.slack_ns
        low = self._gvt_low()
        if self._passes(low, lt):
            self._skew(low)
            return
        w[b + VCLOCK.window_waits] += 1
        spins = 0
        while True:
            spins += 1
            if spins % ABORT_CHECK_EVERY == 0 and self.abort():
                w[b + VCLOCK.window_spins] += spins
                raise RunAborted("aborted while waiting at the virtual-time window")
            os.sched_yield()
            low = self._gvt_low()
            if self._passes(low, lt):
                break
        w[b + VCLOCK.window_spins] += spins
        self._skew(low)

    def _skew(self, low: tuple[int, int] | None) -> None:
        """Record this clock's lead over GVT (``low``: :meth:`_gvt_low`)."""
        if low is not None and self.now - low[0] > self.w[self._clock_base + VCLOCK.max_skew]:
            self.w[self._clock_base + VCLOCK.max_skew] = self.now - low[0]

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

    def wake_idle(self) -> None:
        """Back from a sleep that timed out (nobody woke it): it idled until
        now, i.e. until GVT, the earliest virtual time anybody else may act
        at (or the latest waker's time, if later).  Resuming at its own old
        clock instead would let it act in the others' past."""
        g = self.gvt()
        at = self.w[self._clock_base + VCLOCK.wake_at]
        self.wake(at if g is None or at > g else g)

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
        return self._clock_bases[participant]

    def done(self) -> None:
        """This participant is finished: it never holds GVT back again."""
        self.publish()
        self._set_state(VT_DONE)

    # -- locks ----------------------------------------------------------------------
    def acquire(self, lock: SpinLock | Callable[[], object], vlock_id: int) -> int:
        """Acquire ``lock`` (a lock, or its lock call; its virtual record is
        ``vlock_id``) at this clock; returns the virtual ns waited (already
        charged)."""
        w, b = self.w, self._clock_base
        # declared before the window: a participant waiting there for this
        # lock is one of its spinners in virtual time
        w[b + VCLOCK.waits_on] = vlock_id + 1
        try:
            self.window()
            t = self.now
            w[b + VCLOCK.now] = t
            try:
                if callable(lock):
                    w[b + VCLOCK.state] = VT_LOCKWAIT  # holds GVT at the request time
                    self.last_real = lock()
                else:
                    # its place in the lock's queue is taken while it still
                    # holds GVT at its request: a later request, admitted by
                    # the window once this one waits, queues behind it
                    r = lock.lock_queue()
                    w[b + VCLOCK.state] = VT_LOCKWAIT
                    self.last_real = lock.lock_wait(r)
            finally:
                w[b + VCLOCK.state] = VT_RUN
        finally:
            w[b + VCLOCK.waits_on] = 0
        v = self._vlock_base[vlock_id]
        last = w[v + VLOCK.owner]
        grant = t
        if last != NO_OWNER:
            # released at `release`; a waiter runs with it `handoff` later,
            # and later still for every other waiter spinning at the release
            release = w[v + VLOCK.release]
            handoff = self.handoff_ns
            if self.spinner_ns and t <= release:
                # It spins until the release: let every action before the
                # release happen first, so that each spinner has declared
                # itself (a waiter counts at its holder's clock: this one's)
                w[v + VLOCK.holder] = self.id + 1
                self.now = release
                self._wait_gvt()
                n = self._spinners(vlock_id + 1, release)
                w[v + VLOCK.spinners] += n
                handoff += n * self.spinner_ns
            grant = max(t, release + handoff)
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
        w[v + VLOCK.holder] = self.id + 1
        self.held += 1
        self.hold_start[vlock_id] = grant
        if waited > self.slack_ns:
            # The holder acts at its grant time: let the others reach it
            # first (they may touch what the lock protects, or shared state
            # beside it, at earlier virtual times).  Its waiters count at its
            # clock from now on (VLOCK.holder), so they never hold it back.
            self._wait_gvt()
        return waited

    def _spinners(self, waits_on: int, release: int) -> int:
        """The other participants asking for the lock (``waits_on`` = its
        vlock + 1) whose requests came before its ``release``: those
        spinning on its line when it was released.  In wall time they wait
        for the real lock or at the window; both have declared the lock and
        published their request time.  Exact when the caller has waited at
        the window for every action before ``release`` (:meth:`acquire` and
        :meth:`release` do): each such request is then made.  A request at
        the release's own virtual time is not a spinner, so that the count
        does not depend on which of the two the host ran first."""
        w = self.w
        n = 0
        for o in self._others:
            if w[o + _WAITS_ON] == waits_on and w[o + _NOW] < release:
                n += 1
        return n

    def try_acquire(
        self, trylock: Callable[[], bool], vlock_id: int, unlock: Callable[[], object]
    ) -> bool:
        """spin_trylock at this clock: fails if the real trylock does, or if
        the lock was released later in virtual time than this attempt (it
        was still held at the attempt: the real lock, just taken, is given
        back with ``unlock``).  Else granted now (+ bounce when another
        participant held it last).  A failure of the second kind sets
        ``released_ahead``: the holder, ahead in wall time (within the
        slack), has released and gone on."""
        self.window()
        self.released_ahead = False
        if not trylock():
            return False
        w = self.w
        v = self._vlock_base[vlock_id]
        last = w[v + VLOCK.owner]
        grant = self.now
        if last != NO_OWNER:
            if w[v + VLOCK.release] > grant:
                w[v + VLOCK.trylock_held] += 1
                self.released_ahead = True
                unlock()
                return False
            if last != self.id:
                grant += self.bounce_ns
        w[v + VLOCK.grants] += 1
        w[v + VLOCK.holder] = self.id + 1
        waited = grant - self.now
        self.busy += waited
        self.now = grant
        self.held += 1
        self.hold_start[vlock_id] = grant
        if waited > self.slack_ns:
            self._wait_gvt()  # as after a waiting acquire
        return True

    def release(self, lock: SpinLock | Callable[[], object], vlock_id: int) -> None:
        """Release ``lock`` (a lock, or its unlock call) at this clock (the
        critical section's costs charged).

        A lock whose cache line also holds data its critical section writes
        (``VLOCK.line_writes``: a qdisc's root lock shares its line with
        q.qlen and the queue's head) makes each such write take the line
        from every spinner, and the unlock (a write too) wait until their
        re-reads are served: ``line_writes x spinners x spinner_ns`` more,
        the spinners counted at the release."""
        w = self.w
        v = self._vlock_base[vlock_id]
        writes = w[v + VLOCK.line_writes]
        if writes and self.spinner_ns:
            self._wait_gvt()  # every request before the release is made
            n = self._spinners(vlock_id + 1, self.now)
            if n:
                w[v + VLOCK.line_spinners] += n
                self.charge(writes * n * self.spinner_ns)
        w[v + VLOCK.release] = self.now
        w[v + VLOCK.owner] = self.id
        w[v + VLOCK.holder] = 0
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
    half of an uncontended lock+unlock (``lock_ns``); a request joins the
    real lock's queue before it is seen waiting, so the real FIFO lock
    serves requests in virtual order.  ``lock`` returns whether the grant waited in
    virtual time and leaves that wait in ``last_wait_ns`` (the real lock's
    wall-time queue, which the window keeps short, is not what a caller
    measures here); ``last_ahead`` is 0: the virtual queue is not counted."""
    unlock_, trylock_ = lock.unlock, lock.trylock
    vid, half = lock.id, lock_ns // 2

    def vlock() -> bool:
        waited = vcpu.acquire(lock, vid)
        vcpu.charge(half)
        lock.last_wait_ns, lock.last_ahead = waited, 0
        return waited > 0

    def vunlock() -> None:
        vcpu.charge(lock_ns - half)
        vcpu.release(unlock_, vid)

    def vtrylock() -> bool:
        vcpu.charge(half)
        return vcpu.try_acquire(trylock_, vid, unlock_)

    lock.lock, lock.unlock, lock.trylock = vlock, vunlock, vtrylock
