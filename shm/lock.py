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
emulated CPU, which is what makes the lock's cache line travel in the kernel
and is how XPS locality shows.  As in the kernel (``lock_class_stats`` is
per-CPU and summed when read), each CPU counts into its own private row: a
Python list on the hot path, copied to its shared row by :meth:`LockSpace.flush`
(the CPU worker flushes periodically and at exit; the uncontended path then
costs a few list updates instead of shared-memory read-modify-writes).

Who holds each lock (emulated CPU) and who waits for which lock are always in
shared memory, so a watchdog can name them and recover a lock whose holder
died (:meth:`SpinLock.recover`).
"""
from __future__ import annotations

import os
import time
from array import array
from dataclasses import dataclass
from typing import Callable, Sequence

import posix_ipc

from .layout import Layout, Record
from .ipc import IpcOwner, pid_alive

FAIRNESS = ("fifo", "unfair")
WAITING = ("spin", "block", "adaptive")

#: Bounded sleep between checks of the abort word in a blocking wait.
BLOCK_SLICE_S = 0.05
#: Longest queue of waiters a fifo lock keeps (one entry per waiting CPU).
MAX_WAITERS = 64
NO_CPU = -1

LOCK = Record(
    "spinlock",
    [
        ("owner_cpu", "emulated CPU holding the lock, NO_CPU if free; written by the "
                      "acquirer (unfair) or by the releaser handing off (fifo), under the lock"),
        ("last_cpu", "CPU of the previous holder (bounce detection); under the lock"),
        ("acquired_ns", "monotonic ns when the current holder got it; under the lock"),
        ("q_head", "fifo: index of the first waiter; under the guard (the lock's semaphore)"),
        ("q_tail", "fifo: index past the last waiter; under the guard"),
        ("q_cpu", MAX_WAITERS, "fifo: ring of waiting CPUs; under the guard"),
    ],
)

STAT = Record(
    "lock_class_stats",
    [
        ("acquisitions", "times this CPU acquired the lock"),
        ("contentions", "acquisitions that had to wait"),
        ("con_bounces", "contentions while a different CPU held it"),
        ("acq_bounces", "acquisitions after a different CPU had held it"),
        ("wait_min", "ns; -1 until the first contention"),
        ("wait_max", "ns"),
        ("wait_total", "ns"),
        ("hold_min", "ns; -1 until the first release"),
        ("hold_max", "ns"),
        ("hold_total", "ns"),
        ("ahead_total", "sum over contentions of holders+waiters found ahead"),
        ("sleeps", "contended waits that went to sleep in the semaphore"),
        ("trylock_fail", "spin_trylock calls that failed"),
    ],
)

WAITER = Record(
    "lock_waiter",
    [
        ("pid", "process acting as this CPU; written by that process"),
        ("waiting_for", "lock id this CPU waits for, or -1; written by this CPU"),
        ("since_ns", "monotonic ns when the wait began; written by this CPU"),
    ],
)

_S = STAT.words
_ACQ, _CON, _CONB, _ACQB = STAT.acquisitions, STAT.contentions, STAT.con_bounces, STAT.acq_bounces
_WMIN, _WMAX, _WTOT = STAT.wait_min, STAT.wait_max, STAT.wait_total
_HMIN, _HMAX, _HTOT = STAT.hold_min, STAT.hold_max, STAT.hold_total
_AHEAD, _SLEEPS, _TRYF = STAT.ahead_total, STAT.sleeps, STAT.trylock_fail
_OWNER, _LAST, _TACQ = LOCK.owner_cpu, LOCK.last_cpu, LOCK.acquired_ns
_QH, _QT, _QC = LOCK.q_head, LOCK.q_tail, LOCK.q_cpu


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
            return "adaptive", 20_000, f"{processes} processes on {cores} cores: spin 20 us, then sleep"
        return "adaptive", 5_000, (
            f"{processes} processes on {cores} cores (oversubscribed): spin 5 us, then sleep"
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
        region,
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
        self.cpu = NO_CPU
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
        self._handles: list[SpinLock] = []

    def __len__(self) -> int:
        return len(self.names)

    def bind(self, cpu: int) -> list["SpinLock"]:
        """Handles for every lock, acting as emulated CPU ``cpu``."""
        if not 0 <= cpu < self.ncpus:
            raise ValueError(f"cpu {cpu} out of range 0..{self.ncpus - 1}")
        self.cpu = cpu
        w = self.region.section_words("lock_waiters", cpu)
        w[WAITER.pid] = os.getpid()
        w[WAITER.waiting_for] = -1
        self._waiter = w
        self._handles = [SpinLock(self, i, cpu) for i in range(len(self.names))]
        return self._handles

    def flush(self) -> None:
        """Copy this CPU's private statistics rows to shared memory."""
        for h in self._handles:
            h._flush()

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
    """One lock as seen by one emulated CPU: ``spin_lock``/``spin_unlock``."""

    __slots__ = (
        "space", "id", "name", "cpu", "rec", "sem", "st", "_st_shared", "_t_acq",
        "_fifo", "_waiting", "_spin_ns", "_yield", "_handoff",
    )

    def __init__(self, space: LockSpace, lock_id: int, cpu: int) -> None:
        self.space = space
        self.id = lock_id
        self.name = space.names[lock_id]
        self.cpu = cpu
        self.rec = space.region.section_words("locks", lock_id)
        self._st_shared = space.region.section_words("lock_stats", lock_id * space.ncpus + cpu)
        #: private statistics row, flushed to ``_st_shared``
        self.st = list(self._st_shared)
        self.sem = space.sems[lock_id]
        self._t_acq = 0
        p = space.policy
        self._fifo = p.fairness == "fifo"
        self._waiting = p.waiting
        self._spin_ns = p.spin_ns if p.waiting == "adaptive" else (0 if p.waiting == "block" else -1)
        self._yield = p.yield_spin
        self._handoff = space.handoff[cpu] if self._fifo else None

    # -- the kernel API -------------------------------------------------------
    def lock(self) -> None:
        """spin_lock(): acquire, waiting as the run's policy says."""
        if self._fifo:
            self._fifo_lock()
            return
        try:
            self.sem.acquire(0)
        except posix_ipc.BusyError:
            self._contended()
            return
        self._got()

    def unlock(self) -> None:
        """spin_unlock(): release; a fifo lock is handed to its oldest waiter."""
        now = time.perf_counter_ns()
        h = now - self._t_acq
        st = self.st
        st[_HTOT] += h
        if h > st[_HMAX]:
            st[_HMAX] = h
        if h < st[_HMIN] or st[_HMIN] < 0:
            st[_HMIN] = h
        rec = self.rec
        if self._fifo:
            self._guard()
            head = rec[_QH]
            if head != rec[_QT]:
                nxt = rec[_QC + head % MAX_WAITERS]
                rec[_QH] = head + 1
                rec[_OWNER] = nxt
                self.sem.release()
                self.space.handoff[nxt].release()
                return
            rec[_OWNER] = NO_CPU
            self.sem.release()
            return
        rec[_OWNER] = NO_CPU
        self.sem.release()

    def trylock(self) -> bool:
        """spin_trylock(): take the lock only if it is free right now."""
        if self._fifo:
            self._guard()
            rec = self.rec
            if rec[_OWNER] == NO_CPU and rec[_QH] == rec[_QT]:
                rec[_OWNER] = self.cpu
                self.sem.release()
                self._got()
                return True
            self.sem.release()
            self.st[_TRYF] += 1
            return False
        try:
            self.sem.acquire(0)
        except posix_ipc.BusyError:
            self.st[_TRYF] += 1
            return False
        self._got()
        return True

    def is_locked(self) -> bool:
        """spin_is_locked() (a racy read, as in the kernel)."""
        return self.rec[_OWNER] != NO_CPU

    # -- internals ---------------------------------------------------------------
    def _got(self) -> None:
        """Bookkeeping of an uncontended acquisition (we hold the lock)."""
        rec = self.rec
        cpu = self.cpu
        st = self.st
        st[_ACQ] += 1
        if rec[_LAST] != cpu:
            st[_ACQB] += 1
            rec[_LAST] = cpu
        rec[_OWNER] = cpu
        self._t_acq = time.perf_counter_ns()

    def _contended(self) -> None:
        """Unfair lock: the try failed; wait per policy."""
        t0 = time.perf_counter_ns()
        rec = self.rec
        holder = rec[_OWNER]
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
        rec[_OWNER] = self.cpu
        self._account_contended(t0, holder, ahead, slept)

    def _spin_try(self, sem, limit: int | None) -> bool:
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

    def _sleep(self, sem) -> bool:
        """One bounded sleep in ``sem``; True when acquired."""
        try:
            sem.acquire(BLOCK_SLICE_S)
            return True
        except posix_ipc.BusyError:
            if self.space.abort():
                raise RunAborted(f"{self.name}: run aborted while sleeping")
            return False
        except posix_ipc.SignalError:
            return False

    def _guard(self) -> None:
        """fifo: take the lock's guard semaphore (protects the waiter queue)."""
        sem = self.sem
        while True:
            try:
                sem.acquire(BLOCK_SLICE_S)
                return
            except posix_ipc.BusyError:
                if self.space.abort():
                    raise RunAborted(f"{self.name}: run aborted waiting for the guard")
            except posix_ipc.SignalError:
                pass

    def _fifo_lock(self) -> None:
        self._guard()
        rec = self.rec
        cpu = self.cpu
        if rec[_OWNER] == NO_CPU and rec[_QH] == rec[_QT]:
            rec[_OWNER] = cpu
            self.sem.release()
            st = self.st
            st[_ACQ] += 1
            if rec[_LAST] != cpu:
                st[_ACQB] += 1
                rec[_LAST] = cpu
            self._t_acq = time.perf_counter_ns()
            return
        # Queue up behind the holder and everyone already waiting.
        t0 = time.perf_counter_ns()
        holder = rec[_OWNER]
        tail = rec[_QT]
        ahead = 1 + tail - rec[_QH]
        if ahead > MAX_WAITERS:
            self.sem.release()
            raise RuntimeError(f"{self.name}: more than {MAX_WAITERS} waiters")
        rec[_QC + tail % MAX_WAITERS] = cpu
        rec[_QT] = tail + 1
        self.sem.release()
        self._begin_wait(t0)
        hand = self._handoff
        slept = False
        try:
            while True:
                # The releaser sets owner_cpu to us and then posts our handoff
                # semaphore; spinning watches the word, sleeping the semaphore.
                if self._spin_ns != 0 and self._spin_owner(t0):
                    hand.acquire()  # already posted: consume it, no sleep
                    break
                slept = True
                if self._sleep(hand):
                    break
        finally:
            self._end_wait()
        self._account_contended(t0, holder, ahead, slept)

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

    def _account_contended(self, t0: int, holder: int, ahead: int, slept: bool) -> None:
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
        if rec[_LAST] != cpu:
            st[_ACQB] += 1
            rec[_LAST] = cpu
        st[_WTOT] += w
        if w > st[_WMAX]:
            st[_WMAX] = w
        if w < st[_WMIN] or st[_WMIN] < 0:
            st[_WMIN] = w
        self._t_acq = now

    def _count_waiters(self) -> int:
        wt = self.space.region.array("lock_waiters")["waiting_for"]
        return int((wt == self.id).sum())

    def _begin_wait(self, t0: int) -> None:
        w = self.space._waiter
        w[WAITER.since_ns] = t0
        w[WAITER.waiting_for] = self.id

    def _end_wait(self) -> None:
        self.space._waiter[WAITER.waiting_for] = -1

    def _flush(self) -> None:
        self._st_shared[:] = array("q", self.st)

    # -- recovery (watchdog / supervisor) -------------------------------------
    def recover(self) -> bool:
        """Release the lock on behalf of a holder whose process died.

        Returns True if the lock was held by a dead process and has been
        released (handed to the next fifo waiter, or freed).  A live holder is
        never disturbed.
        """
        owner = self.rec[_OWNER]
        if owner == NO_CPU or pid_alive(self.space.pid_of(owner)):
            return False
        if self._fifo:
            self._t_acq = time.perf_counter_ns()
            save = self.st
            self.st = [0] * _S  # do not charge the dead holder's hold to us
            try:
                self.unlock()
            finally:
                self.st = save
            return True
        self.rec[_OWNER] = NO_CPU
        self.sem.release()
        return True


# Kernel-style spellings, for code that mirrors net/core and net/sched.
def spin_lock(lock: SpinLock) -> None:
    lock.lock()


def spin_unlock(lock: SpinLock) -> None:
    lock.unlock()


def spin_trylock(lock: SpinLock) -> bool:
    return lock.trylock()
