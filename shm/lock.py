"""Kernel spinlocks between processes: named POSIX semaphores plus shared state.

Why this module is more than ``sem.acquire()``
----------------------------------------------
The effects netq exists to show depend on *who goes next* when a lock is
released and on *how waiters wait*, so both are selectable per run:

fairness
    ``unfair``  whoever grabs the semaphore first wins (a futex semaphore: a
                releasing holder can take it straight back, a newly arriving
                CPU can overtake sleepers).  Like the pre-2.6.25 x86 spinlock.
    ``fifo``    waiters are served in arrival order, as the kernel's ticket
                spinlock (2.6.25) and qspinlock (4.2) do.  The lock keeps a
                queue of waiting CPUs in shared memory; the releaser hands the
                lock directly to the head of the queue and posts that CPU's
                private *handoff* semaphore.  The per-CPU handoff semaphore is
                qspinlock's per-CPU MCS node: a CPU waits for one lock at a
                time, so one node per CPU suffices.  The queue is guarded by the
                lock's own semaphore (held for a few word updates only).

waiting
    ``spin``      try in a loop (``sched_yield`` between tries when more
                  processes are runnable than there are cores), like a spinlock.
    ``block``     sleep in the semaphore (a futex wait).
    ``adaptive``  spin for ``spin_ns``, then sleep: the rtmutex/mutex
                  "optimistic spinning" compromise.

Blocking waits use a bounded ``sem_timedwait`` and check the run's abort word
between waits, so a supervisor can always unwedge a run whose lock holder died
(:class:`RunAborted`), and an interrupted wait (``posix_ipc.SignalError``) is
simply retried.

Statistics follow ``/proc/lock_stat`` (Documentation/locking/lockstat.rst):
acquisitions, contentions, con-bounces, acq-bounces, wait time and hold time
min/max/total.  "bounce" here means the lock was last held by a different
emulated CPU (a lock's first acquisition is not a bounce), which is what
makes the lock's cache line travel in the kernel and is how XPS locality
shows.  As in the kernel (``lock_class_stats`` is
per-CPU and summed when read), each CPU counts into its own row of shared
memory; nobody else writes it, so no lock is needed and a crashed worker's
counts survive it.  The uncontended paths (and the atomics) are one call into
a small compiled helper when it can be built (:mod:`shm.native`): a
SpinLock's ``lock``/``unlock``/``trylock`` are then methods of a compiled
type that falls back to this module's Python for everything but the
uncontended result.

Who holds each lock (emulated CPU) and who waits for which lock are always in
shared memory, so a watchdog can name them and recover a lock whose holder
died (:meth:`SpinLock.recover`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import posix_ipc

from . import native
from .ipc import IpcOwner, pid_alive, raise_pending_signal
from .layout import Layout
from .lockrec import LOCK, MAX_WAITERS, NO_CPU, STAT, WAITER
from .region import Region

FAIRNESS = ("fifo", "unfair")
WAITING = ("spin", "block", "adaptive")

#: Bounded sleep between checks of the abort word in a blocking wait.
BLOCK_SLICE_S = 0.05
_S = STAT.words
_ACQ, _CON, _CONB, _ACQB = STAT.acquisitions, STAT.contentions, STAT.con_bounces, STAT.acq_bounces
_WMIN, _WMAX, _WTOT = STAT.wait_min, STAT.wait_max, STAT.wait_total
_HMIN, _HMAX, _HTOT = STAT.hold_min, STAT.hold_max, STAT.hold_total
_AHEAD, _SLEEPS, _TRYF = STAT.ahead_total, STAT.sleeps, STAT.trylock_fail
_HOFF, _HOFF_TOT, _HOFF_MAX = STAT.handoffs, STAT.handoff_total, STAT.handoff_max
_OWNER, _LAST, _TACQ, _HANDED = LOCK.owner_cpu, LOCK.last_cpu, LOCK.acquired_ns, LOCK.handed_ns
_QH, _QT, _QC = LOCK.q_head, LOCK.q_tail, LOCK.q_cpu


def _bounce(ns: int) -> None:
    """Busy-wait an emulated cache-line bounce."""
    if ns:
        end = time.perf_counter_ns() + ns
        while time.perf_counter_ns() < end:
            pass


class RunAborted(Exception):
    """A wait was abandoned because the run is being torn down."""


@dataclass(frozen=True)
class LockPolicy:
    """How every lock of a run behaves (reported in the run's setup)."""

    fairness: str = "fifo"
    waiting: str = "adaptive"
    #: adaptive: how long to spin before sleeping
    spin_ns: int = 20_000
    #: spin: yield the core between tries (set when processes > cores)
    yield_spin: bool = False
    #: emulated cost of an acquisition after another CPU held the lock: the
    #: cache lines of the lock and of what it protects moving (0: none)
    bounce_ns: int = 0
    #: added when that other CPU is on another NUMA node (``numa_node``)
    remote_ns: int = 0
    #: NUMA node of each locker (emulated CPUs, then the control process)
    numa_node: tuple[int, ...] = ()

    def bounce_cost(self, last: int, cpu: int) -> int:
        """ns an acquisition by ``cpu`` pays after ``last`` held the lock."""
        cost = self.bounce_ns
        if (
            self.remote_ns
            and last >= 0
            and self.numa_node
            and self.numa_node[last] != self.numa_node[cpu]
        ):
            cost += self.remote_ns
        return cost

    def __post_init__(self) -> None:
        if self.fairness not in FAIRNESS:
            raise ValueError(f"lock fairness must be one of {', '.join(FAIRNESS)}")
        if self.waiting not in WAITING:
            raise ValueError(f"lock waiting must be one of {', '.join(WAITING)}")
        if self.spin_ns < 0:
            raise ValueError("lock spin_ns must be >= 0")

    @staticmethod
    def default_waiting(processes: int, cores: int) -> tuple[str, int, str]:
        """The waiting mode to use when none is asked for, and why.

        Spinning only pays while the holder is running on another core; with
        more runnable processes than cores a spinner burns the holder's time
        slice.  Adaptive waiting spins about one cross-core handoff and then
        sleeps; when oversubscribed the spin is kept short.
        """
        if processes <= cores:
            return (
                "adaptive",
                20_000,
                f"{processes} processes on {cores} cores: spin 20 us, then sleep",
            )
        return (
            "adaptive",
            5_000,
            (f"{processes} processes on {cores} cores (oversubscribed): spin 5 us, then sleep"),
        )


def lock_layout(layout: Layout, nlocks: int, ncpus: int) -> None:
    """Add the lock sections for ``nlocks`` locks and ``ncpus`` lockers."""
    layout.add("locks", LOCK, nlocks)
    layout.add("lock_stats", STAT, nlocks * ncpus)
    layout.add("lock_waiters", WAITER, ncpus)


class LockSpace:
    """All locks of a run: records, statistics, semaphores.

    Created once by the supervisor before forking; each process then calls
    :meth:`bind` with the emulated CPU it acts as and gets handles.
    ``ncpus`` counts every locker: emulated CPUs plus any control process.
    """

    def __init__(
        self,
        owner: IpcOwner,
        region: Region,
        names: Sequence[str],
        ncpus: int,
        policy: LockPolicy,
        abort: Callable[[], bool] = lambda: False,
    ) -> None:
        self.region = region
        self.names = list(names)
        self.ncpus = ncpus
        self.policy = policy
        self.abort = abort
        self.sems = [owner.semaphore(f"lock{i}", 1) for i in range(len(self.names))]
        self.handoff = (
            [owner.semaphore(f"handoff{c}", 0) for c in range(ncpus)]
            if policy.fairness == "fifo"
            else []
        )
        recs = region.array("locks")
        recs["owner_cpu"] = NO_CPU
        recs["last_cpu"] = NO_CPU
        st = region.array("lock_stats")
        st["wait_min"] = -1
        st["hold_min"] = -1
        wt = region.array("lock_waiters")
        wt["waiting_for"] = -1
        del recs, st, wt
        self._waiter_rows: dict[int, memoryview] = {}
        #: the compiled helper's handles on the same semaphores
        self.native = native.lib is not None and getattr(region, "cptr", None) is not None
        if self.native:
            self.csems = [native.lib.netq_sem_open(s.name.encode()) for s in self.sems]
            self.chandoff = native.ffi.new(
                "void *[]", [native.lib.netq_sem_open(s.name.encode()) for s in self.handoff] or 1
            )
            self.cnode = native.ffi.new("int64_t[]", list(policy.numa_node) or [0] * ncpus)
            if any(p == native.ffi.NULL for p in self.csems):
                raise OSError("sem_open of a lock semaphore failed")

    def __len__(self) -> int:
        return len(self.names)

    def bind(self, cpu: int) -> list[SpinLock]:
        """Handles for every lock, acting as emulated CPU ``cpu``."""
        if not 0 <= cpu < self.ncpus:
            raise ValueError(f"cpu {cpu} out of range 0..{self.ncpus - 1}")
        w = self.waiter_row(cpu)
        w[WAITER.pid] = os.getpid()
        w[WAITER.waiting_for] = -1
        cls = FifoLock if self.policy.fairness == "fifo" else UnfairLock
        return [cls(self, i, cpu) for i in range(len(self.names))]

    def waiter_row(self, cpu: int) -> memoryview:
        w = self._waiter_rows.get(cpu)
        if w is None:
            w = self._waiter_rows[cpu] = self.region.section_words("lock_waiters", cpu)
        return w

    # -- reading (any process) ------------------------------------------------
    def owner(self, lock_id: int) -> int:
        return self.region.words[self.region.layout["locks"].base(lock_id) + _OWNER]

    def waiters(self, lock_id: int) -> list[int]:
        """CPUs currently waiting for ``lock_id``."""
        wt = self.region.array("lock_waiters")
        return [int(c) for c in range(self.ncpus) if wt["waiting_for"][c] == lock_id]

    def pid_of(self, cpu: int) -> int:
        return int(self.region.array("lock_waiters")["pid"][cpu])

    def stats(self) -> list[dict]:
        """/proc/lock_stat-like rows, summed over CPUs (flushed values)."""
        st = self.region.array("lock_stats").reshape(len(self.names), self.ncpus)
        rows = []
        for i, name in enumerate(self.names):
            s = st[i]
            con = int(s["contentions"].sum())
            hold_min = s["hold_min"][s["hold_min"] >= 0]
            wait_min = s["wait_min"][s["wait_min"] >= 0]
            rows.append(
                {
                    "name": name,
                    "acquisitions": int(s["acquisitions"].sum()),
                    "contentions": con,
                    "con_bounces": int(s["con_bounces"].sum()),
                    "acq_bounces": int(s["acq_bounces"].sum()),
                    "waittime_min_ns": int(wait_min.min()) if wait_min.size else 0,
                    "waittime_max_ns": int(s["wait_max"].max()),
                    "waittime_total_ns": int(s["wait_total"].sum()),
                    "holdtime_min_ns": int(hold_min.min()) if hold_min.size else 0,
                    "holdtime_max_ns": int(s["hold_max"].max()),
                    "holdtime_total_ns": int(s["hold_total"].sum()),
                    "ahead_total": int(s["ahead_total"].sum()),
                    "sleeps": int(s["sleeps"].sum()),
                    "trylock_fail": int(s["trylock_fail"].sum()),
                    "handoffs": int(s["handoffs"].sum()),
                    "handoff_total_ns": int(s["handoff_total"].sum()),
                    "handoff_max_ns": int(s["handoff_max"].max()),
                    "acquisitions_by_cpu": [int(x) for x in s["acquisitions"]],
                }
            )
        return rows

    def holders(self) -> list[dict]:
        """Every lock that is held or waited for: owner CPU/pid and waiters."""
        recs = self.region.array("locks")
        out = []
        for i, name in enumerate(self.names):
            owner = int(recs["owner_cpu"][i])
            waiters = self.waiters(i)
            if owner != NO_CPU or waiters:
                out.append(
                    {
                        "lock": name,
                        "owner_cpu": owner,
                        "owner_pid": self.pid_of(owner) if owner != NO_CPU else None,
                        "owner_alive": pid_alive(self.pid_of(owner)) if owner != NO_CPU else None,
                        "waiters": waiters,
                    }
                )
        return out


class SpinLock:
    """One lock as seen by one emulated CPU: ``lock``/``unlock``/``trylock``.

    :meth:`LockSpace.bind` returns the subclass for the run's fairness and
    the available backend: the uncontended paths are a single call into the
    compiled helper (:mod:`shm.native`) when it is available, else Python.
    The contended wait is Python in every case (it sleeps or spins anyway).
    Statistics are written straight into this CPU's row in shared memory.
    """

    __slots__ = (
        "_ch",
        "_cl",
        "_ct",
        "_cu",
        "_handoff",
        "_ops",
        "_spin_ns",
        "_yield",
        "cpu",
        "id",
        "last_ahead",
        "last_wait_ns",
        "lock",
        "name",
        "rec",
        "sem",
        "space",
        "st",
        "trylock",
        "unlock",
    )

    #: spin_lock() (True if it was contended), spin_unlock(), spin_trylock():
    #: the compiled lock type's methods (:data:`shm.native.LockOps`) when it is
    #: built, else the fairness subclass's ``_lock``/``_unlock``/``_trylock``.
    #: Either way the uncontended path is the compiled helper's (when there
    #: is one) and anything else goes to ``_lock_after``/``_unlock_after``/
    #: ``_trylock_after`` with what the first attempt returned.
    lock: Callable[[], bool]
    unlock: Callable[[], None]
    trylock: Callable[[], bool]
    _lock: Callable[[], bool]
    _unlock: Callable[[], None]
    _trylock: Callable[[], bool]
    _lock_after: Callable[[int], bool]
    _unlock_after: Callable[[int], None]
    _trylock_after: Callable[[int], bool]

    def __init__(self, space: LockSpace, lock_id: int, cpu: int) -> None:
        self.space = space
        self.id = lock_id
        self.name = space.names[lock_id]
        self.cpu = cpu
        region = space.region
        self.rec = region.section_words("locks", lock_id)
        #: this CPU's lock_class_stats row (shared memory, STAT indices)
        self.st = region.section_words("lock_stats", lock_id * space.ncpus + cpu)
        self.sem = space.sems[lock_id]
        p = space.policy
        self._spin_ns = (
            p.spin_ns if p.waiting == "adaptive" else (0 if p.waiting == "block" else -1)
        )
        self._yield = p.yield_spin
        #: this CPU's handoff semaphore (fifo only; None for an unfair lock, which
        #: never reads it).  posix_ipc is untyped, so the Optional is not checked.
        self._handoff: posix_ipc.Semaphore = space.handoff[cpu] if space.handoff else None
        #: what the last contended lock() found: CPUs ahead, ns waited
        self.last_ahead = 0
        self.last_wait_ns = 0
        #: the compiled helper: a netq_lk handle and the lock/unlock/trylock calls
        self._ch = self._cl = self._cu = self._ct = None
        if space.native:
            sec = region.layout
            self._ch = native.ffi.new(
                "netq_lk *",
                {
                    "sem": space.csems[lock_id],
                    "rec": region.cptr + sec["locks"].base(lock_id),
                    "st": region.cptr + sec["lock_stats"].base(lock_id * space.ncpus + cpu),
                    "cpu": cpu,
                    "hand": space.chandoff,
                    "bounce_ns": space.policy.bounce_ns,
                    "remote_ns": space.policy.remote_ns,
                    "node": space.cnode,
                },
            )
            lib = native.lib
            if space.policy.fairness == "fifo":
                names = ("netq_lock_fifo", "netq_unlock_fifo", "netq_trylock_fifo")
            else:
                names = ("netq_trylock_unfair", "netq_unlock_unfair", "netq_trylock_unfair")
            self._cl, self._cu, self._ct = (getattr(lib, n) for n in names)
        self._ops = None
        if self._ch is not None and native.LockOps is not None:
            ffi = native.ffi

            def address(x: object) -> int:
                return int(ffi.cast("intptr_t", x))

            self._ops = native.LockOps(
                self._ch,
                address(self._ch),
                tuple(address(ffi.addressof(native.lib, n)) for n in names),
                (self._lock_after, self._unlock_after, self._trylock_after),
            )
            self.lock, self.unlock, self.trylock = (
                self._ops.lock,
                self._ops.unlock,
                self._ops.trylock,
            )
        else:
            self.lock, self.unlock, self.trylock = self._lock, self._unlock, self._trylock

    def lock_queue(self) -> int:
        """spin_lock() in two steps, for a caller that must have its place
        in the lock's queue before it is seen waiting (the virtual clock's
        window): this first step takes the lock if it is free or joins its
        queue, and returns what :meth:`lock_wait` needs.  A lock without a
        queue (unfair) makes its whole attempt in :meth:`lock_wait`."""
        return 1

    def lock_wait(self, r: int) -> bool:
        """The rest of spin_lock() after :meth:`lock_queue` returned ``r``;
        returns whether it waited, as spin_lock() does."""
        return self._lock() if r else False

    def is_locked(self) -> bool:
        """spin_is_locked() (a racy read, as in the kernel)."""
        return self.rec[_OWNER] != NO_CPU

    # -- shared pieces ---------------------------------------------------------------
    def _got(self) -> None:
        """Bookkeeping of an acquisition (we hold the lock)."""
        rec = self.rec
        cpu = self.cpu
        st = self.st
        st[_ACQ] += 1
        last = rec[_LAST]
        if last != cpu:
            rec[_LAST] = cpu
            if last != NO_CPU:  # a first acquisition moves nothing
                st[_ACQB] += 1
                _bounce(self.space.policy.bounce_cost(last, cpu))
        rec[_OWNER] = cpu
        rec[_TACQ] = time.perf_counter_ns()

    def _hold_time(self) -> None:
        h = time.perf_counter_ns() - self.rec[_TACQ]
        st = self.st
        st[_HTOT] += h
        if h > st[_HMAX]:
            st[_HMAX] = h
        if h < st[_HMIN] or st[_HMIN] < 0:
            st[_HMIN] = h

    def _account_contended(self, t0: int, holder: int, ahead: int, slept: bool) -> None:
        """Bookkeeping of a contended acquisition (owner_cpu already ours)."""
        rec = self.rec
        cpu = self.cpu
        now = time.perf_counter_ns()
        w = now - t0
        st = self.st
        st[_ACQ] += 1
        st[_CON] += 1
        st[_AHEAD] += ahead
        if slept:
            st[_SLEEPS] += 1
        if holder != cpu and holder != NO_CPU:
            st[_CONB] += 1
        last = rec[_LAST]
        if last != cpu:
            rec[_LAST] = cpu
            if last != NO_CPU:  # a first acquisition moves nothing
                st[_ACQB] += 1
                _bounce(self.space.policy.bounce_cost(last, cpu))
        st[_WTOT] += w
        if w > st[_WMAX]:
            st[_WMAX] = w
        if w < st[_WMIN] or st[_WMIN] < 0:
            st[_WMIN] = w
        rec[_TACQ] = now
        self.last_ahead = ahead
        self.last_wait_ns = w

    def _begin_wait(self, t0: int) -> None:
        w = self.space.waiter_row(self.cpu)
        w[WAITER.since_ns] = t0
        w[WAITER.waiting_for] = self.id

    def _end_wait(self) -> None:
        self.space.waiter_row(self.cpu)[WAITER.waiting_for] = -1

    def _count_waiters(self) -> int:
        n = 0
        for c in range(self.space.ncpus):
            if self.space.waiter_row(c)[WAITER.waiting_for] == self.id:
                n += 1
        return n

    def _sleep(self, sem: posix_ipc.Semaphore) -> bool:
        """One bounded sleep in ``sem``; True when acquired."""
        try:
            sem.acquire(BLOCK_SLICE_S)
            return True
        except posix_ipc.BusyError:
            if self.space.abort():
                raise RunAborted(f"{self.name}: run aborted while sleeping") from None
            return False
        except posix_ipc.SignalError:
            raise_pending_signal()  # SIGTERM arrives here as SignalError
            return False

    def recover(self) -> bool:
        """Release the lock on behalf of a holder whose process died.

        Returns True if the lock was held by a dead process and has been
        released (handed to the next fifo waiter, or freed).  A live holder is
        never disturbed.  The dead holder's hold time is not known: the
        recovering CPU is charged a hold of ~0 ns instead.
        """
        owner = self.rec[_OWNER]
        if owner == NO_CPU or pid_alive(self.space.pid_of(owner)):
            return False
        self.rec[_TACQ] = time.perf_counter_ns()
        self.unlock()
        return True


class UnfairLock(SpinLock):
    """Whoever grabs the semaphore wins."""

    __slots__ = ()

    def _lock(self) -> bool:
        """spin_lock().  Returns whether it had to wait (then ``last_ahead``
        and ``last_wait_ns`` say what it found)."""
        f = self._cl
        if f is not None:
            if f(self._ch) == 0:
                return False
        else:
            try:
                self.sem.acquire(0)
            except posix_ipc.BusyError:
                pass
            else:
                self._got()
                return False
        return self._lock_after(1)

    def _lock_after(self, r: int) -> bool:
        """The semaphore was taken: wait for it."""
        self._contended()
        return True

    def _unlock(self) -> None:
        """spin_unlock()."""
        f = self._cu
        if f is not None:
            f(self._ch)
            return
        self._hold_time()
        self.rec[_OWNER] = NO_CPU
        self.sem.release()

    def _unlock_after(self, r: int) -> None:
        """Never needed: an unfair unlock cannot fail."""

    def _trylock(self) -> bool:
        """spin_trylock()."""
        f = self._ct
        if f is not None:
            if f(self._ch) == 0:
                return True
        else:
            try:
                self.sem.acquire(0)
                self._got()
                return True
            except posix_ipc.BusyError:
                pass
        return self._trylock_after(1)

    def _trylock_after(self, r: int) -> bool:
        """The semaphore was taken: count the failure."""
        self.st[_TRYF] += 1
        return False

    def _contended(self) -> None:
        t0 = time.perf_counter_ns()
        holder = self.rec[_OWNER]
        ahead = 1 + self._count_waiters()
        self._begin_wait(t0)
        sem = self.sem
        slept = False
        try:
            while True:
                if self._spin_ns != 0:
                    limit = t0 + self._spin_ns if self._spin_ns > 0 else None
                    if self._spin_try(sem, limit):
                        break
                slept = True
                if self._sleep(sem):
                    break
        finally:
            self._end_wait()
        self.rec[_OWNER] = self.cpu
        self._account_contended(t0, holder, ahead, slept)

    def _spin_try(self, sem: posix_ipc.Semaphore, limit: int | None) -> bool:
        pc = time.perf_counter_ns
        yld = self._yield
        abort = self.space.abort
        n = 0
        while True:
            try:
                sem.acquire(0)
                return True
            except posix_ipc.BusyError:
                pass
            n += 1
            if limit is not None and pc() >= limit:
                return False
            if yld:
                os.sched_yield()
            if n & 255 == 0 and abort():
                raise RunAborted(f"{self.name}: run aborted while spinning")


class FifoLock(SpinLock):
    """Waiters are served in arrival order (ticket lock / qspinlock)."""

    __slots__ = ()

    def _lock(self) -> bool:
        """spin_lock().  Returns whether it had to wait (then ``last_ahead``
        and ``last_wait_ns`` say what it found)."""
        f = self._cl
        r = f(self._ch) if f is not None else self._py_lock()
        if r == 0:
            return False
        return self._lock_after(r)

    def _lock_after(self, r: int) -> bool:
        """What the first attempt ``r`` left to do: wait in the queue, or
        retry after a guard timeout."""
        f = self._cl
        while True:
            if r == 0:
                return False
            if r > 0:
                self._wait_handoff(r)
                return True
            if r == -2:
                raise RuntimeError(f"{self.name}: more than {MAX_WAITERS} waiters")
            if self.space.abort():  # -1: the guard wait timed out
                raise RunAborted(f"{self.name}: run aborted waiting for the guard")
            r = f(self._ch) if f is not None else self._py_lock()

    def lock_queue(self) -> int:
        """spin_lock()'s first step: take the lock if it is free and nobody
        is queued (0), else join the queue (the CPUs ahead); a guard that
        timed out is retried here, so that the place is taken on return."""
        f = self._cl
        while True:
            r = f(self._ch) if f is not None else self._py_lock()
            if r != -1:
                return r
            if self.space.abort():
                raise RunAborted(f"{self.name}: run aborted waiting for the guard")

    def lock_wait(self, r: int) -> bool:
        """Wait for the handoff after :meth:`lock_queue` returned ``r``."""
        return self._lock_after(r) if r else False

    def _unlock(self) -> None:
        """spin_unlock(): hand the lock to the oldest waiter, if any."""
        f = self._cu
        r = f(self._ch) if f is not None else self._py_unlock()
        if r == -3:
            self._unlock_after(r)

    def _unlock_after(self, r: int) -> None:
        """Retry after a guard timeout (``r`` -3) until done or aborted."""
        f = self._cu
        while r == -3:
            if self.space.abort():
                raise RunAborted(f"{self.name}: run aborted waiting for the guard")
            r = f(self._ch) if f is not None else self._py_unlock()

    def _trylock(self) -> bool:
        """spin_trylock(): only if free and nobody is queued."""
        f = self._ct
        r = f(self._ch) if f is not None else self._py_trylock()
        if r == 0:
            return True
        return self._trylock_after(r)

    def _trylock_after(self, r: int) -> bool:
        """1: not free (already counted); -1: the guard timed out, retry."""
        f = self._ct
        while r < 0:
            if self.space.abort():
                raise RunAborted(f"{self.name}: run aborted waiting for the guard")
            r = f(self._ch) if f is not None else self._py_trylock()
        return r == 0

    # -- the Python backend of the three calls above ------------------------------------
    def _guard(self) -> bool:
        try:
            self.sem.acquire(BLOCK_SLICE_S)
            return True
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            return False

    def _py_lock(self) -> int:
        if not self._guard():
            return -1
        rec = self.rec
        if rec[_OWNER] == NO_CPU and rec[_QH] == rec[_QT]:
            self._got()
            self.sem.release()
            return 0
        tail = rec[_QT]
        ahead = 1 + tail - rec[_QH]
        if ahead > MAX_WAITERS:
            self.sem.release()
            return -2
        rec[_QC + tail % MAX_WAITERS] = self.cpu
        rec[_QT] = tail + 1
        self.sem.release()
        return ahead

    def _py_trylock(self) -> int:
        if not self._guard():
            return -1
        rec = self.rec
        if rec[_OWNER] == NO_CPU and rec[_QH] == rec[_QT]:
            self._got()
            self.sem.release()
            return 0
        self.sem.release()
        self.st[_TRYF] += 1
        return 1

    def _py_unlock(self) -> int:
        if not self._guard():
            return -3
        self._hold_time()
        rec = self.rec
        head = rec[_QH]
        if head != rec[_QT]:
            nxt = rec[_QC + head % MAX_WAITERS]
            rec[_QH] = head + 1
            rec[_OWNER] = nxt
            rec[_HANDED] = time.perf_counter_ns()
            self.sem.release()
            self.space.handoff[nxt].release()
            return nxt
        rec[_OWNER] = NO_CPU
        self.sem.release()
        return -1

    # -- the contended wait ------------------------------------------------------------
    def _wait_handoff(self, ahead: int) -> None:
        """Queued behind ``ahead`` CPUs: wait until the releaser hands over.

        The releaser sets owner_cpu to us, then posts our handoff semaphore;
        spinning watches the word, sleeping waits in the semaphore."""
        t0 = time.perf_counter_ns()
        holder = self.rec[_OWNER]
        self._begin_wait(t0)
        hand = self._handoff
        slept = False
        try:
            while True:
                if self._spin_ns != 0 and self._spin_owner(t0):
                    hand.acquire()  # already posted: consume it, no sleep
                    break
                slept = True
                if self._sleep(hand):
                    break
        finally:
            self._end_wait()
        self._account_contended(t0, holder, ahead, slept)
        # the gap between the releaser's handoff and this CPU running with
        # the lock: a spinning waiter's is short, a sleeper's is a wake-up
        gap = self.rec[_TACQ] - self.rec[_HANDED]
        if gap >= 0:
            st = self.st
            st[_HOFF] += 1
            st[_HOFF_TOT] += gap
            if gap > st[_HOFF_MAX]:
                st[_HOFF_MAX] = gap

    def _spin_owner(self, t0: int) -> bool:
        rec = self.rec
        cpu = self.cpu
        pc = time.perf_counter_ns
        limit = t0 + self._spin_ns if self._spin_ns > 0 else None
        yld = self._yield
        n = 0
        while rec[_OWNER] != cpu:
            n += 1
            if n & 15 == 0:
                if limit is not None and pc() >= limit:
                    return False
                if yld:
                    os.sched_yield()
                if n & 4095 == 0 and self.space.abort():
                    raise RunAborted(f"{self.name}: run aborted while spinning")
        return True


# Kernel-style spellings, for code that mirrors net/core and net/sched.
def spin_lock(lock: SpinLock) -> None:
    lock.lock()


def spin_unlock(lock: SpinLock) -> None:
    lock.unlock()


def spin_trylock(lock: SpinLock) -> bool:
    return lock.trylock()
