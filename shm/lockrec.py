"""The records of a lock in shared memory: the lock word and its waiter queue,
the per-CPU ``/proc/lock_stat`` row, and the per-CPU waiter slot.

They are declared here, apart from :mod:`shm.lock`, because both the Python
lock (:mod:`shm.lock`) and the compiled helper (:mod:`shm.native`, which bakes
the field indices into its C source) need them.
"""

from __future__ import annotations

from .layout import Record, field

#: Longest queue of waiters a fifo lock keeps (one entry per waiting CPU).
MAX_WAITERS = 64
NO_CPU = -1


class LOCK(Record, name="spinlock"):
    owner_cpu = field(
        "emulated CPU holding the lock, NO_CPU if free; written by the "
        "acquirer (unfair) or by the releaser handing off (fifo), under the lock"
    )
    last_cpu = field("CPU of the previous holder (bounce detection); under the lock")
    acquired_ns = field("monotonic ns when the current holder got it; under the lock")
    handed_ns = field(
        "fifo: monotonic ns the releaser handed the lock to the next waiter; under the guard"
    )
    q_head = field("fifo: index of the first waiter; under the guard (the lock's semaphore)")
    q_tail = field("fifo: index past the last waiter; under the guard")
    q_cpu = field("fifo: ring of waiting CPUs; under the guard", count=MAX_WAITERS)


class STAT(Record, name="lock_class_stats"):
    acquisitions = field("times this CPU acquired the lock")
    contentions = field("acquisitions that had to wait")
    con_bounces = field("contentions while a different CPU held it")
    acq_bounces = field("acquisitions after a different CPU had held it")
    wait_min = field("ns; -1 until the first contention")
    wait_max = field("ns")
    wait_total = field("ns")
    hold_min = field("ns; -1 until the first release")
    hold_max = field("ns")
    hold_total = field("ns")
    ahead_total = field("sum over contentions of holders+waiters found ahead")
    sleeps = field("contended waits that went to sleep in the semaphore")
    trylock_fail = field("spin_trylock calls that failed")
    handoffs = field("fifo: contended acquisitions by handoff from the releaser")
    handoff_total = field(
        "fifo: ns from the handoff to this CPU running with the lock "
        "(the lock is held by nobody working meanwhile)"
    )
    handoff_max = field("fifo: ns, the longest such gap")


class WAITER(Record, name="lock_waiter"):
    pid = field("process acting as this CPU; written by that process")
    waiting_for = field("lock id this CPU waits for, or -1; written by this CPU")
    since_ns = field("monotonic ns when the wait began; written by this CPU")
